"""The hand-over's `fast()`: Prefect settings without heartbeats, made once, not per run."""

from __future__ import annotations

import pytest

from flows import handover


def test_fast_turns_heartbeats_off_and_reuses_its_settings_for_the_next_run() -> None:
    from prefect.context import get_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    with handover.fast():
        first = get_settings_context().settings
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
    with handover.fast():
        assert get_settings_context().settings is first  # not validated again
    assert get_settings_context().settings is not first  # left as it was outside the block


def test_fast_follows_a_change_of_the_prefect_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.context import get_settings_context
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    with handover.fast():
        before = get_settings_context().settings
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with handover.fast():
        assert get_settings_context().settings is not before
        assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api"
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
