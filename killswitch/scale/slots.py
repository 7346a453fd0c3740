"""Provider rate limits across workers: each containment call to a provider holds one slot of
the Prefect global concurrency limit `killswitch-provider-<name>` while it is in flight, so N
workers together never exceed what the provider allows. Only inside a flow run on a server
configured for it (`scale.enforce_provider_limits`); break-glass never asks Prefect.

A limit that does not exist is an error, found before the run changes anything
(Prefect's own `concurrency()` only warns and limits nothing, unless `strict=True`)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from killswitch.errors import ConfigurationError, TransientError
from killswitch.scale.settings import limit_name
from killswitch.settings import Settings

# A held slot's lease (renewed while it is held): a process killed while holding slots frees
# them when the lease runs out, not after Prefect's default of 300 s. 60 s is the least the
# server accepts.
LEASE_S = 60.0


class MissingLimitError(ConfigurationError):
    code = "concurrency-limit-missing"
    remediation = (
        "Create the provider limits (`killswitch scale up` does; or `prefect gcl create "
        "killswitch-provider-<name> --limit N`), or unset scale.enforce_provider_limits. "
        "Nothing was changed."
    )


def in_flow_run() -> bool:
    """This code runs inside a Prefect flow run (break-glass never imports Prefect)."""
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def enforced(settings: Settings) -> bool:
    """Provider calls of this run hold global slots."""
    return settings.scale.enforce_provider_limits and in_flow_run()


def check(providers: Iterable[str]) -> None:
    """Every provider's limit exists on the server and is active; MissingLimitError naming
    the ones that do not."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    missing: list[str] = []
    with get_client(sync_client=True) as client:
        for provider in providers:
            name = limit_name(provider)
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                missing.append(name)
                continue
            if not limit.active:
                missing.append(f"{name} (inactive)")
    if missing:
        raise MissingLimitError(
            f"the Prefect server has no global concurrency limit {', '.join(missing)}: "
            "provider calls would not be limited across workers"
        )


class ProviderSlot:
    """One provider's slot for one run: hold it around each call; the intervals it was held
    (wall clock, seconds) are what the ledger records."""

    def __init__(self, provider: str, *, timeout_s: float) -> None:
        self.provider = provider
        self.name = limit_name(provider)
        self.timeout_s = timeout_s
        self.held: list[tuple[float, float, float]] = []  # (start, end, acquiring took)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
        from prefect.concurrency.sync import concurrency

        asked = time.time()
        try:
            holding = concurrency(
                self.name,
                occupy=1,
                timeout_seconds=self.timeout_s,
                strict=True,
                lease_duration=LEASE_S,
            )
            holding.__enter__()
        except TimeoutError:
            raise TransientError(
                f"no slot of {self.name} within {self.timeout_s:g}s", provider=self.provider
            ) from None
        except ConcurrencySlotAcquisitionError as exc:
            raise MissingLimitError(f"{self.name}: {exc}") from exc
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            with self._lock:
                self.held.append((start, end, start - asked))
            holding.__exit__(*sys.exc_info())
