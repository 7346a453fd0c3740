"""Provider rate limits across workers: each containment call to a provider holds one slot of
the Prefect global concurrency limit `killswitch-provider-<name>` while it is in flight, so N
workers together never exceed what the provider allows. Only inside a flow run on a server
configured for it (`scale.enforce_provider_limits`); break-glass never asks Prefect.

A process keeps the slots it leased in a pool per provider (`SlotPool`): a call takes an idle
one here without asking the server, and the pool gives a slot back to the server once it has
stayed idle for LINGER_S. Prefect's own `concurrency()` costs, per call, an acquisition, a
release, two events and a lease-renewal thread with a client of its own — with hundreds of
calls a fleet spent more time on slots than on providers — and its acquisitions are queued
one at a time per process. Calls in flight here never outnumber the slots held here, so the
fleet-wide bound is the same.

A limit that does not exist is an error, found before the run changes anything
(Prefect's own `concurrency()` only warns and limits nothing, unless `strict=True`)."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from killswitch.errors import ConfigurationError, TransientError
from killswitch.scale.settings import limit_name
from killswitch.settings import Settings

if TYPE_CHECKING:
    from uuid import UUID

# A held slot's lease (renewed while it is held): a process killed while holding slots frees
# them when the lease runs out, not after Prefect's default of 300 s. 60 s is the least the
# server accepts.
LEASE_S = 60.0
# How long a slot may stay idle in a process's pool before it goes back to the server: long
# enough for the next call of a busy process to find it, short enough that another worker
# waiting for it loses little.
LINGER_S = 0.5
# How long a call waits, at most, before this process asks the server again for a slot of a
# full limit (one call at a time asks).
ASK_AGAIN_S = 1.0


class MissingLimitError(ConfigurationError):
    code = "concurrency-limit-missing"
    remediation = (
        "Create the provider limits (`killswitch scale up` does; or `prefect gcl create "
        "killswitch-provider-<name> --limit N`), or unset scale.enforce_provider_limits. "
        "Nothing was changed."
    )


def in_flow_run() -> bool:
    """This code runs inside a Prefect flow run (break-glass never imports Prefect)."""
    import sys

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


class SlotPool:
    """This process's slots of one limit, leased one at a time from the Prefect server when a
    call finds none idle here; renewed while held, given back after LINGER_S idle."""

    def __init__(
        self,
        name: str,
        *,
        linger_s: float = LINGER_S,
        lease_s: float = LEASE_S,
        renew_s: float | None = None,
    ) -> None:
        """`renew_s`: how often a held lease is renewed (a third of the lease by default)."""
        self.name = name
        self.linger_s = linger_s
        self.lease_s = lease_s
        self.renew_s = renew_s if renew_s is not None else lease_s / 3
        self._idle: list[tuple[UUID, float]] = []  # (lease, idle since)
        self._renewed: dict[UUID, float] = {}  # every lease held here, lent or idle
        self._cond = threading.Condition()
        # Made here, in the settings of the thread that makes the pool (a pool's own threads
        # and the calls' threads need not carry Prefect's settings context).
        from prefect.client.orchestration import get_client

        self._client: Any = get_client(sync_client=True)
        self._client.__enter__()
        self._keeper: threading.Thread | None = None
        # The keeper sleeps on its own event, not on `_cond`: a slot given back must wake a
        # call waiting for one, not the keeper (which would leave the call waiting out the
        # server's Retry-After, up to 30 s, beside an idle slot).
        self._closed = threading.Event()
        self.leased = 0  # slots asked of the server (the rest were lent here)
        self._asking = False  # a call of this process is asking the server for a slot

    def take(self, timeout_s: float) -> UUID:
        """An idle slot of this process, else a new lease from the server (waiting while the
        limit is full, for a slot here or there); TimeoutError past `timeout_s`. One call at
        a time asks the server; the others wait here for a slot given back or leased."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                while not self._idle and self._asking:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(self.name)
                    self._cond.wait(min(left, ASK_AGAIN_S))
                if self._idle:
                    return self._idle.pop()[0]
                self._asking = True
            try:
                lease, retry_after = self._lease()
            finally:
                with self._cond:
                    self._asking = False
                    self._cond.notify()
            if lease is not None:
                return lease
            with self._cond:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(self.name)
                if not self._idle:
                    # The server's Retry-After grows with how long slots are held (ours are
                    # held across calls): ask again sooner, one call of this process at a time.
                    self._cond.wait(min(retry_after, ASK_AGAIN_S, left))

    def give(self, lease: UUID) -> None:
        with self._cond:
            if lease not in self._renewed:  # the server took it back (or the pool closed)
                return
            self._idle.append((lease, time.monotonic()))
            self._cond.notify()

    def _lease(self) -> tuple[UUID | None, float]:
        """One slot from the server: (lease, 0), or (None, seconds to wait) when it is full."""
        import httpx
        from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse

        try:
            response = self._prefect().increment_concurrency_slots_with_lease(
                names=[self.name], slots=1, mode="concurrency", lease_duration=self.lease_s
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:  # full: the server says when to ask again
                return None, float(exc.response.headers.get("Retry-After", 0.1))
            if exc.response.status_code == 404:
                raise MissingLimitError(f"{self.name}: no such limit") from exc
            raise
        granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        if not granted.limits:
            raise MissingLimitError(f"{self.name}: no such limit on the server")
        with self._cond:
            self._renewed[granted.lease_id] = time.monotonic()
            self.leased += 1
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._keep, name=f"slots-{self.name}", daemon=True
                )
                self._keeper.start()
        return granted.lease_id, 0.0

    def _prefect(self) -> Any:
        return self._client

    def _keep(self) -> None:
        """Give back what stayed idle past LINGER_S; renew what is held before it lapses."""
        import httpx

        while not self._closed.wait(self.linger_s / 2):
            with self._cond:
                now = time.monotonic()
                stale = [lease for lease, since in self._idle if now - since >= self.linger_s]
                self._idle = [(lease, s) for lease, s in self._idle if lease not in stale]
                for lease in stale:
                    self._renewed.pop(lease, None)
                due = [lease for lease, at in self._renewed.items() if now - at > self.renew_s]
            for lease in stale:
                self._release(lease)
            for lease in due:
                try:
                    self._prefect().renew_concurrency_lease(
                        lease_id=lease, lease_duration=self.lease_s
                    )
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code in (404, 410):  # lapsed: its slot is free there
                        self._forget(lease)
                    continue
                except Exception:  # noqa: S112  (renewed again on the next turn; it lapses at worst)
                    continue
                with self._cond:
                    if lease in self._renewed:
                        self._renewed[lease] = time.monotonic()

    def _forget(self, lease: UUID) -> None:
        """A lease the server no longer holds: never lent again (a call holding it now
        finishes; giving it back drops it)."""
        with self._cond:
            self._renewed.pop(lease, None)
            self._idle = [(held, since) for held, since in self._idle if held != lease]

    def _release(self, lease: UUID) -> None:
        try:
            self._prefect().release_concurrency_slots_with_lease(lease_id=lease)
        except Exception:  # noqa: S110  (the lease lapses by itself within LEASE_S)
            pass

    def close(self) -> None:
        """Give every slot back (at exit; a killed process's leases lapse within LEASE_S)."""
        with self._cond:
            self._closed.set()
            leases = list(self._renewed)
            self._renewed.clear()
            self._idle.clear()
            self._cond.notify_all()
        for lease in leases:
            self._release(lease)
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        try:
            self._client.__exit__(None, None, None)
        except Exception:  # noqa: S110  (closing at exit: nothing left to tell)
            pass


_pools: dict[str, SlotPool] = {}
_pools_lock = threading.Lock()


def pool(name: str) -> SlotPool:
    """This process's pool for the limit `name`."""
    with _pools_lock:
        if name not in _pools:
            if not _pools:
                atexit.register(_close_pools)
            _pools[name] = SlotPool(name)
        return _pools[name]


def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for each in pools:
        each.close()


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
        shared = pool(self.name)
        asked = time.time()
        try:
            lease = shared.take(self.timeout_s)
        except TimeoutError:
            raise TransientError(
                f"no slot of {self.name} within {self.timeout_s:g}s", provider=self.provider
            ) from None
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            shared.give(lease)
            with self._lock:
                self.held.append((start, end, start - asked))
