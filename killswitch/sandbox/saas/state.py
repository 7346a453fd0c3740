"""What the SaaS stand-ins remember: tokens and keys, pending revocations, injected faults."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
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

    def alive(self) -> bool:
        if self.status != "active":
            return False
        return self.dead_at is None or time.monotonic() < self.dead_at


@dataclass
class Fault:
    status: int
    retry_after: float | None
    remaining: int


class State:
    """All stand-ins' state behind one lock (requests arrive on several threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, Token] = {}  # secret -> token
        self.faults: dict[str, Fault] = {}
        self.messages: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}
        self.admin_keys: dict[str, str] = {
            "openai": "sk-admin-" + rand(48),
            "anthropic": "sk-ant-admin01-" + rand(86) + "AA",
        }
        self.github_revoke_delay_s = 1.0

    def add(self, token: Token) -> Token:
        with self.lock:
            self.tokens[token.secret] = token
        return token

    def by_secret(self, secret: str | None) -> Token | None:
        with self.lock:
            return self.tokens.get(secret or "")

    def by_ref(self, provider: str, ref: str) -> Token | None:
        with self.lock:
            for token in self.tokens.values():
                if token.provider == provider and token.ref == ref:
                    return token
        return None

    def fault(self, provider: str) -> Fault | None:
        """The next injected fault for a provider, consumed."""
        with self.lock:
            fault = self.faults.get(provider)
            if fault is None or fault.remaining <= 0:
                return None
            fault.remaining -= 1
            return fault
