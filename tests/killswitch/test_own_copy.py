"""`own_copy`: an error several threads learned of together, one copy for each to raise."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from killswitch.errors import ProviderError, RefusedError, TransientError, own_copy


def raised(error: BaseException) -> BaseException:
    try:
        try:
            raise ValueError("the store's own error")
        except ValueError as inner:
            raise error from inner
    except BaseException as caught:  # noqa: BLE001  (KeyboardInterrupt is a case)
        return caught


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("denied", provider="gcp", provider_code="PERMISSION_DENIED"),
        TransientError("slow", provider="aws"),
        RefusedError("no", remediation="fix the input"),
        gexc.Aborted("concurrent policy changes"),  # type: ignore[no-untyped-call]
        OSError(5, "I/O error"),
        KeyboardInterrupt(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_copy_says_what_the_original_said_and_keeps_where_it_came_from(
    error: BaseException,
) -> None:
    original = raised(error)
    copy = own_copy(original)
    assert copy is not original and type(copy) is type(original)
    assert str(copy) == str(original) and copy.args == original.args
    assert vars(copy) == vars(original)  # provider, codes, remediation, errno's kin
    assert copy.__cause__ is original.__cause__
    assert copy.__traceback__ is original.__traceback__
