"""What the shared HTTP app's stand-ins remember: tokens and keys, pending revocations,
injected faults, and the propagation delay (`Lag`) their authentication may be set to show.

Propagation: real providers apply a revocation to their control plane at once (a list or
get of the key shows it revoked) while the servers that authenticate requests learn of it
later. With a lag on for a provider, a revoked, disabled or deleted credential keeps
authenticating for `seconds` after the change; with `flap`, the first request after the
change is already refused and the next ones are accepted again until the lag is over (one
server knew, the others not yet). Control-plane reads (`status`) never lag.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    """`n` random characters of `alphabet` (token material in each provider's format)."""
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass(frozen=True, slots=True)
class Lag:
    """A provider's propagation delay: how long a killed credential keeps authenticating."""

    seconds: float = 0.0
    flap: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "flap": self.flap}


@dataclass
class Token:
    """One credential at a stand-in. `dead_at` may lie in the future (asynchronous revoke);
    `killed_at` is when its status left `active` (monotonic), for the propagation delay."""

    provider: str
    kind: str
    ref: str
    secret: str
    owner: str
    status: str = "active"
    dead_at: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None
    killed_at: float | None = None
    flapped: bool = False
    # The store's per-provider lags (shared with `Tokens`, set by `Tokens.add`).
    lags: dict[str, Lag] = field(default_factory=dict, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every stand-in kills a credential by setting its status: stamp when it happened.
        if name == "status" and value != "active" and getattr(self, "status", None) == "active":
            object.__setattr__(self, "killed_at", time.monotonic())
            object.__setattr__(self, "flapped", False)
        object.__setattr__(self, name, value)

    def _killed(self, now: float) -> float | None:
        """When it stopped being valid (None: it is valid); -inf when it never was."""
        if self.status != "active":
            return self.killed_at if self.killed_at is not None else float("-inf")
        if self.dead_at is not None and now >= self.dead_at:
            return self.dead_at
        return None

    def alive(self) -> bool:
        """Whether it authenticates now, the provider's propagation delay included."""
        now = time.monotonic()
        killed = self._killed(now)
        if killed is None:
            return True
        lag = self.lags.get(self.provider)
        if lag is None or now >= killed + lag.seconds:
            return False
        if lag.flap and not self.flapped:
            self.flapped = True  # one authenticating server knew already
            return False
        return True


@dataclass
class Fault:
    status: int
    retry_after: float | None
    remaining: int


class Tokens:
    """Every credential of the shared HTTP app's stand-ins behind one lock (requests arrive
    on several threads); a plug-in keeps anything else it remembers itself."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, Token] = {}  # secret -> token
        self.refs: dict[tuple[str, str], Token] = {}  # (provider, ref) -> token
        self.faults: dict[str, Fault] = {}
        self.lags: dict[str, Lag] = {}

    def add(self, token: Token) -> Token:
        token.lags = self.lags
        with self.lock:
            self.tokens[token.secret] = token
            self.refs[(token.provider, token.ref)] = token
        return token

    def forget(self, owner: str) -> int:
        """Drop every token of an owner (the sandbox's bulk-seed cleanup)."""
        with self.lock:
            gone = [s for s, t in self.tokens.items() if t.owner == owner]
            for secret in gone:
                token = self.tokens.pop(secret)
                self.refs.pop((token.provider, token.ref), None)
        return len(gone)

    def clear(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.refs.clear()
            self.faults.clear()
            self.lags.clear()

    def set_lag(self, provider: str, lag: Lag) -> dict[str, Any]:
        """Set (seconds 0: clear) a provider's propagation delay; what is in force now."""
        with self.lock:
            if lag.seconds > 0:
                self.lags[provider] = lag
            else:
                self.lags.pop(provider, None)
        return lag.as_dict()

    def used(self, secret: str | None) -> Token | None:
        """The live token with this secret, its last use stamped now; None when dead."""
        token = self.by_secret(secret)
        if token is None or not token.alive():
            return None
        token.last_used_at = time.time()
        return token

    def by_secret(self, secret: str | None) -> Token | None:
        with self.lock:
            return self.tokens.get(secret or "")

    def by_ref(self, provider: str, ref: str) -> Token | None:
        with self.lock:
            return self.refs.get((provider, ref))

    def fault(self, provider: str) -> Fault | None:
        """The next injected fault for a provider, consumed."""
        with self.lock:
            fault = self.faults.get(provider)
            if fault is None or fault.remaining <= 0:
                return None
            fault.remaining -= 1
            return fault


def page(items: list[Token], after: str | None, limit: int, key: str) -> tuple[list[Token], bool]:
    """Cursor paging as the admin APIs do it: the items after the one whose `key` (a meta
    field, or `ref`) is `after`, at most `limit`; and whether more follow."""

    def ident(token: Token) -> str:
        return token.ref if key == "ref" else str(token.meta.get(key, ""))

    start = 0
    if after:
        start = next((i + 1 for i, t in enumerate(items) if ident(t) == after), len(items))
    chunk = items[start : start + limit]
    return chunk, start + limit < len(items)
