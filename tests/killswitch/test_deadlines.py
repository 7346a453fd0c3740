"""Calls that must answer within a deadline: the silent one is given up on, not waited for."""

from __future__ import annotations

import threading
import time

import pytest

from killswitch.deadlines import abandoned, answered_within


def test_a_call_that_does_not_answer_is_given_up_at_the_deadline() -> None:
    release = threading.Event()
    started = time.monotonic()
    answers = answered_within(
        {"quick": lambda: "here", "silent": lambda: release.wait(30) and "late"},
        deadline_s=0.3,
        workers=2,
    )
    elapsed = time.monotonic() - started
    assert answers == {"quick": "here", "silent": None}
    assert 0.3 <= elapsed < 2.0
    assert abandoned() >= 1  # still running, as a daemon nobody waits for
    release.set()


def test_each_call_has_the_deadline_from_its_own_start() -> None:
    # One worker: the second call starts after the first, and still gets its full deadline.
    answers = answered_within(
        {"first": lambda: time.sleep(0.2) or 1, "second": lambda: time.sleep(0.2) or 2},
        deadline_s=0.35,
        workers=1,
    )
    assert answers == {"first": 1, "second": 2}


def test_a_call_that_raises_raises_here() -> None:
    def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        answered_within({"broken": broken}, deadline_s=1.0, workers=1)
