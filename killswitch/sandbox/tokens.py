"""What the shared HTTP app's stand-ins remember: tokens and keys, pending revocations,
injected faults."""

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


@dataclass
class Token:
    """One credential at a stand-in. `dead_at` may lie in the future (asynchronous revoke)."""

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

    def alive(self) -> bool:
        if self.status != "active":
            return False
        return self.dead_at is None or time.monotonic() < self.dead_at


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

    def add(self, token: Token) -> Token:
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
