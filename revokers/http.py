"""The shared shape of token providers reached over HTTP (Slack, GitHub, OpenAI, Anthropic).

Calls are async (httpx.AsyncClient, one connection pool per provider) on an event loop of
the revoker's own, so the engine's threads can fan out hundreds of calls without a thread
each waiting on a socket. The sync verbs of the contract hand coroutines to that loop.
These providers have no tag search: what an agent holds comes from the inventory.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from abc import abstractmethod
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self, TypeVar

import httpx

from killswitch.errors import NotFoundError, OwnIdentityError, ProviderError, TransientError
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Outcome,
    UndoRecord,
    Verb,
    Verdict,
)
from killswitch.retry import retrying_transient
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import Discovery, ProbeAttempt, Revoker
from revokers.plugin import HttpProviderSettings

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            # Closed here, not by the garbage collector at interpreter exit (where closing
            # its self-pipe can fail noisily on stderr).
            self.loop.close()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); without one, until
    `x-ratelimit-reset` (epoch seconds) when `x-ratelimit-remaining` is 0 (GitHub's limits)."""
    value = response.headers.get("retry-after")
    if not value:
        reset = response.headers.get("x-ratelimit-reset")
        if response.headers.get("x-ratelimit-remaining") != "0" or not reset:
            return None
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


# A body that does not parse (an HTML 503 page from a proxy, a cut-off answer) is not the
# provider's verdict on the request: transient, like a 5xx, wherever a revoker reads one.
UNPARSEABLE = (json.JSONDecodeError, UnicodeDecodeError)


def unparseable(provider: str, doing: str, exc: Exception) -> TransientError:
    """The error for a body that does not parse (never quoting the body)."""
    return TransientError(
        f"{doing}: unparseable response body ({type(exc).__name__}; body not shown)",
        provider=provider,
        provider_code="unparseable-body",
    )


async def parsed(coroutine: Coroutine[Any, Any, T], provider: str, doing: str) -> T:
    """Await a revoker coroutine; an unparseable response body becomes a TransientError."""
    try:
        return await coroutine
    except UNPARSEABLE as exc:
        raise unparseable(provider, doing, exc) from exc


class HttpRevoker(Revoker):
    """Base of the HTTP token revokers: inventory discovery, one action per credential."""

    operation: ClassVar[str]
    reversible: ClassVar[bool]

    def __init__(self, config: HttpProviderSettings) -> None:
        self.config = config
        self.max_workers = config.max_workers
        self._loop = LoopThread(f"{self.provider}-loop")
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The revoker for the provider's section of the settings (its plug-in's model)."""
        return cls(settings.section(cls.provider, HttpProviderSettings))

    def _http(self) -> httpx.AsyncClient:
        """The provider's connection pool, created on (and bound to) the revoker's loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url,
                timeout=self.config.timeout_s,
                verify=self.config.verify,
                limits=httpx.Limits(max_connections=self.max_workers * 2),
            )
        return self._client

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call; throttling, 5xx and transport errors become TransientError."""
        try:
            response = await self._http().request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(
                f"{method} {path}: {type(exc).__name__}", provider=self.provider
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"{method} {path}: HTTP {response.status_code}",
                provider=self.provider,
                provider_code=str(response.status_code),
                retry_after=retry_after(response),
            )
        return response

    def pages(
        self, path: str, *, cursor: str, limit: int = 100, **params: str
    ) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paged admin listing (`data`, `has_more`, `last_id`), one
        page in memory at a time; a page is retried on transient errors within a
        deadline (the provider's timeout × 3)."""
        after: str | None = None
        while True:
            query = {"limit": str(limit), **params, **({cursor: after} if after else {})}
            body = retrying_transient(self.config.timeout_s * 3)(self._page, path, query)
            yield from body.get("data", [])
            after = body.get("last_id")
            if not body.get("has_more") or not after:
                return

    def _page(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        """One page of an admin listing; an unparseable one is transient (retried)."""
        response = self._get(path, query)
        if response.status_code != 200:
            raise self.refused(response, f"GET {path}")
        try:
            body: dict[str, Any] = response.json()
        except UNPARSEABLE as exc:
            raise unparseable(self.provider, f"GET {path}", exc) from exc
        return body

    def _get(self, path: str, query: Mapping[str, str]) -> httpx.Response:
        return self._loop.run(
            self.request("GET", path, headers=self.admin_headers(), params=dict(query))
        )

    def admin_headers(self) -> dict[str, str]:
        if self.config.admin_key is None:
            raise OwnIdentityError(
                f"{self.provider}.admin_key is not configured", provider=self.provider
            )
        return {"Authorization": f"Bearer {self.config.admin_key.get_secret_value()}"}

    def secrets_of(self, action: Action, materials: Sequence[Material], *, hint: str) -> list[str]:
        """The token values a revoke-with-the-secret call needs; none is a clear failure."""
        values = [v for m in materials if (v := m.get("token"))]
        if not values:
            raise ProviderError(
                f"no token material for {action.target}: {self.provider} revokes a token only "
                f"with the token itself — {hint}",
                provider=self.provider,
                provider_code="no-material",
            )
        return values

    def refused(self, response: httpx.Response, doing: str) -> ProviderError:
        """The kill switch's own admin identity refused, a missing target, or another error."""
        text = f"{doing}: HTTP {response.status_code}"
        if response.status_code in (401, 403):
            return OwnIdentityError(
                text, provider=self.provider, provider_code=str(response.status_code)
            )
        if response.status_code == 404:
            return NotFoundError(text, provider=self.provider, provider_code="404")
        return ProviderError(text, provider=self.provider, provider_code=str(response.status_code))

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        """What the inventory declares for this provider (these providers have no tag search)."""
        credentials = [
            Credential(self.provider, ref.kind, ref.ref, f"{self.provider}:{agent.id}", agent.id)
            for ref in declared
            if ref.provider == self.provider and ref.kind in self.credential_kinds
        ]
        actions = [
            Action(
                self.provider,
                Verb.CONTAIN,
                self.operation,
                c.principal,
                c.ref,
                self.reversible,
                params={"kind": c.kind},
            )
            for c in credentials
        ]
        return Discovery(tuple(credentials), (), tuple(actions))

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        return self._loop.run(self._timed(action, materials))

    async def _timed(self, action: Action, materials: Sequence[Material]) -> ActionResult:
        started = asyncio.get_running_loop().time()
        try:
            detail, undo = await parsed(
                self.aperform(action, materials), self.provider, action.operation
            )
        except NotFoundError:
            detail, undo = "gone already", None
        outcome = Outcome.DONE if undo is not None else Outcome.ALREADY
        elapsed = asyncio.get_running_loop().time() - started
        return ActionResult(action, outcome, detail, undo, elapsed)

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        return self._loop.run(parsed(self.aprobe(credential, material), self.provider, "probe"))

    def read_back(self, credential: Credential) -> Verdict:
        return self._loop.run(parsed(self.aread_back(credential), self.provider, "read back"))

    def restore(self, record: UndoRecord) -> ActionResult:
        doing = f"restore {record.action.operation}"
        return self._loop.run(
            parsed(self.arestore(record.action, record.data), self.provider, doing)
        )

    @abstractmethod
    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        """Do the action; (what was done, undo data — None when nothing changed)."""

    @abstractmethod
    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        """Use the credential once against the provider."""

    @abstractmethod
    async def aread_back(self, credential: Credential) -> Verdict:
        """No secret: what the provider's admin side says, if it has one."""

    async def arestore(self, action: Action, data: Mapping[str, Any]) -> ActionResult:
        raise ProviderError(
            f"{self.provider}: {action.operation} cannot be undone", provider=self.provider
        )

    def close(self) -> None:
        if self._client is not None:
            self._loop.run(self._client.aclose())
            self._client = None
        self._loop.stop()
