"""Retries: only transient errors, inside the deadline; anything else fails at once, as a result."""

from __future__ import annotations

import time

import pytest

from killswitch.errors import OwnIdentityError, ProviderError, TransientError
from killswitch.execution import attempt
from killswitch.models import Action, ActionResult, Outcome, Verb

ACTION = Action("aws", Verb.CONTAIN, "deactivate-key", "arn:aws:iam::1:user/u", "AKIA1", True)


class Flaky:
    """A provider call that fails `times` times with `error`, then succeeds."""

    def __init__(self, times: int, error: Exception) -> None:
        self.times, self.error, self.calls = times, error, 0

    def __call__(self, action: Action) -> ActionResult:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return ActionResult(action, Outcome.DONE, "ok", {})


def test_transient_errors_are_retried_until_success() -> None:
    call = Flaky(3, TransientError("Throttling", provider="aws", provider_code="Throttling"))
    result = attempt(call, ACTION, ACTION, deadline_s=10)
    assert result.outcome is Outcome.DONE and call.calls == 4
    assert result.attempts == 4  # what the ledger records: the retries are visible there


def test_a_failed_result_counts_its_attempts_too() -> None:
    call = Flaky(10_000, TransientError("503", provider="aws"))
    result = attempt(call, ACTION, ACTION, deadline_s=0.3)
    assert result.outcome is Outcome.FAILED and result.attempts == call.calls > 1


@pytest.mark.parametrize(
    "error",
    [
        OwnIdentityError("AccessDenied", provider="aws", provider_code="AccessDenied"),
        ProviderError("LimitExceeded", provider="aws", provider_code="LimitExceeded"),
    ],
)
def test_other_errors_are_not_retried_and_become_a_failed_result(error: Exception) -> None:
    call = Flaky(5, error)
    result = attempt(call, ACTION, ACTION, deadline_s=10)
    assert call.calls == 1
    assert result.outcome is Outcome.FAILED and error.code in result.detail  # type: ignore[attr-defined]


def test_retries_stop_at_the_deadline() -> None:
    call = Flaky(10_000, TransientError("503", provider="aws"))
    started = time.monotonic()
    result = attempt(call, ACTION, ACTION, deadline_s=0.5)
    assert result.outcome is Outcome.FAILED and "transient" in result.detail
    assert time.monotonic() - started < 5.5  # one backoff step at most beyond the deadline
    assert call.calls >= 2


def test_an_unexpected_exception_is_a_failed_result_without_its_message() -> None:
    call = Flaky(1, RuntimeError("secret-looking-detail"))
    result = attempt(call, ACTION, ACTION, deadline_s=1)
    assert result.outcome is Outcome.FAILED
    assert "secret-looking-detail" not in result.detail and "RuntimeError" in result.detail
