"""The one retry policy: only `TransientError` (throttling, 5xx, timeouts), with jittered
exponential backoff that honours the provider's Retry-After, inside a deadline."""

from __future__ import annotations

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_random_exponential,
)

from killswitch.errors import TransientError

_backoff = wait_random_exponential(multiplier=0.1, max=5)


def _wait(state: RetryCallState) -> float:
    """Jittered exponential backoff, but never sooner than the provider's Retry-After."""
    base = _backoff(state)
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    hinted = getattr(error, "retry_after", None)
    return max(base, float(hinted)) if hinted else base


def retrying_transient(deadline_s: float) -> Retrying:
    """Retry TransientError alone, with jittered exponential backoff, until the deadline."""
    return Retrying(
        retry=retry_if_exception_type(TransientError),
        # Stop before a wait (a long Retry-After, say) would carry past the deadline.
        stop=stop_before_delay(deadline_s),
        wait=_wait,
        reraise=True,
    )
