"""Acme's stand-in: a token table in memory, with the provider's two answers."""

from __future__ import annotations

import threading

TOKENS: dict[str, dict[str, str]] = {}  # token id -> {"agent", "secret", "status"}
LOCK = threading.Lock()


def mint(agent_id: str, token_id: str, secret: str) -> None:
    with LOCK:
        TOKENS[token_id] = {"agent": agent_id, "secret": secret, "status": "active"}


def authenticate(secret: str) -> str:
    """`200 ok`, or `401 token_revoked` for a revoked token, `401 invalid_token` otherwise."""
    with LOCK:
        for token in TOKENS.values():
            if token["secret"] == secret:
                return "200 ok" if token["status"] == "active" else "401 token_revoked"
    return "401 invalid_token"
