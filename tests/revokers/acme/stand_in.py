"""Acme's stand-in: a token table in memory, with the provider's answers.

Besides the plain case, it can be as awkward as a real provider: revocation that takes
`delay_s` to reach every replica (the token keeps working meanwhile), a replica that accepts
the token once more after its first rejection (`flap`), a probe that is refused before
anything is revoked (`refused`: the token may not call the probe's endpoint), a provider
that answers nothing useful until the token is revoked (`down`), and a revoked token's
answer that is not on the allow-list (`revoked_answer`), one that is slow to answer
until the token is revoked (`slow_s`), and a revocation that takes `revoke_s` to return
(it takes effect when it returns). `EVENTS` keeps every revocation and every answer, in
order, for tests about what happens before what.
"""

from __future__ import annotations

import threading
import time

TOKENS: dict[str, dict[str, str]] = {}  # token id -> {"agent", "secret", "status"}
LOCK = threading.Lock()
# token id -> how it misbehaves: delay_s, flap, refused, down, revoked_answer
QUIRKS: dict[str, dict[str, object]] = {}
_REVOKED_AT: dict[str, float] = {}
_FLAPPED: set[str] = set()
_REJECTED: set[str] = set()
# ("revoked", token id, "") when a revocation takes effect; ("answer", token id, answer).
EVENTS: list[tuple[str, str, str]] = []


def mint(agent_id: str, token_id: str, secret: str, **quirks: object) -> None:
    with LOCK:
        TOKENS[token_id] = {"agent": agent_id, "secret": secret, "status": "active"}
        QUIRKS[token_id] = dict(quirks)
        _REVOKED_AT.pop(token_id, None)
        _FLAPPED.discard(token_id)
        _REJECTED.discard(token_id)


def set_status(token_id: str, status: str) -> str:
    """Set a token's status; the previous one."""
    with LOCK:
        token = TOKENS[token_id]
        before, token["status"] = token["status"], status
        if status == "revoked" and before != "revoked":
            _REVOKED_AT[token_id] = time.monotonic()
            EVENTS.append(("revoked", token_id, ""))
        return before


def revoke(token_id: str) -> str:
    """Revoke a token (after its `revoke_s`); the status it had."""
    with LOCK:
        delay_s = float(str(QUIRKS.get(token_id, {}).get("revoke_s", 0)))
    time.sleep(delay_s)
    return set_status(token_id, "revoked")


def _answer(token_id: str, token: dict[str, str], *, endpoint: str) -> str:
    quirks = QUIRKS.get(token_id, {})
    revoked = token["status"] == "revoked"
    if endpoint == "me" and quirks.get("refused"):
        return "401 token_revoked"  # refused before containment as after it
    if not revoked:
        return "503 unavailable" if quirks.get("down") else "200 ok"
    if time.monotonic() - _REVOKED_AT.get(token_id, 0.0) < float(str(quirks.get("delay_s", 0))):
        return "200 ok"  # a replica that has not heard of the revocation yet
    if quirks.get("flap") and token_id in _REJECTED and token_id not in _FLAPPED:
        _FLAPPED.add(token_id)
        return "200 ok"  # one replica, once, still serving the old state
    _REJECTED.add(token_id)
    return str(quirks.get("revoked_answer", "401 token_revoked"))


def authenticate(secret: str, endpoint: str = "me") -> str:
    """`200 ok`, or `401 token_revoked` for a revoked token, `401 invalid_token` otherwise
    (`endpoint` "whoami" is the call any token may make, whatever its permissions)."""
    with LOCK:
        slow = [
            float(str(QUIRKS.get(i, {}).get("slow_s", 0)))
            for i, t in TOKENS.items()
            if t["secret"] == secret and t["status"] != "revoked"
        ]
    time.sleep(max(slow, default=0.0))
    with LOCK:
        for token_id, token in TOKENS.items():
            if token["secret"] == secret:
                answer = _answer(token_id, token, endpoint=endpoint)
                EVENTS.append(("answer", token_id, answer))
                return answer
    return "401 invalid_token"
