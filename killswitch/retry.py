"""The one retry policy: only `TransientError` (throttling, 5xx, timeouts), with jittered
exponential backoff that honours the provider's Retry-After, inside a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_base,
    retry_if_exception_type,
    stop_before_delay,
    wait_random_exponential,
)

from killswitch.errors import TransientError

_backoff = wait_random_exponential(multiplier=0.1, max=5)


def _honouring(backoff: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    """`backoff`, but never sooner than the provider's Retry-After."""

    def wait(state: RetryCallState) -> float:
        base = backoff(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        hinted = getattr(error, "retry_after", None)
        return max(base, float(hinted)) if hinted else base

    return wait


_wait = _honouring(_backoff)


def retrying_transient(deadline_s: float) -> Retrying:
    """Retry TransientError alone, with jittered exponential backoff, until the deadline."""
    return Retrying(
        retry=retry_if_exception_type(TransientError),
        # Stop before a wait (a long Retry-After, say) would carry past the deadline.
        stop=stop_before_delay(deadline_s),
        wait=_wait,
        reraise=True,
    )


# When the work in this context must be done by (time.monotonic()): a client that retries
# each call by itself (hvac has no retries: revokers/vault/client.py) stops in time for the
# caller to say what happened before its own deadline passes.
_due: ContextVar[float | None] = ContextVar("killswitch_due", default=None)
MARGIN_S = 0.25


@contextmanager
def due_within(seconds: float) -> Iterator[None]:
    """The work inside must end within `seconds` (for per-call retries to honour)."""
    token = _due.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _due.reset(token)


def retry_budget(most_s: float) -> float:
    """How long one call may go on retrying: `most_s`, or less when the context is due
    sooner (keeping a margin for the caller); 0: no retry at all."""
    due = _due.get()
    if due is None:
        return most_s
    return max(0.0, min(most_s, due - time.monotonic() - MARGIN_S))


_wait_short = _honouring(wait_random_exponential(multiplier=0.05, max=1.0))
_TRANSIENT = retry_if_exception_type(TransientError)


def retrying_call(most_s: float = 10.0, *, when: retry_base = _TRANSIENT) -> Retrying:
    """One call retried by itself when `when` says so (a TransientError by default), for a
    client with no retries of its own (hvac, Graph over httpx): short jittered backoff
    (Retry-After honoured), for `most_s` or until the context is due (`due_within`),
    whichever is sooner."""
    return Retrying(
        retry=when,
        stop=stop_before_delay(retry_budget(most_s)),
        wait=_wait_short,
        reraise=True,
    )
