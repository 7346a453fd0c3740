"""Slack Web API stand-in, on the shared HTTP app: auth.revoke, auth.test, chat.postMessage,
chat.update, usergroups.users.list; and, sandbox only, the messages it received
(`GET /_sandbox/slack/messages`) and its user groups (`POST /_sandbox/slack/usergroups`).

Slack answers HTTP 200 with `{"ok": false, "error": ...}` for a bad token, and 429 with
`Retry-After` and `"error": "ratelimited"` when throttling. A token seeded with an
`ip_allowlist` (Slack's token IP allowlisting) answers `invalid_auth` to every call, auth.revoke
included, from an address outside it — as Slack does ("the request originates from an IP
address disallowed from making the request").
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from killswitch.sandbox.tokens import Token, Tokens, rand


class Board:
    """What Slack remembers besides tokens: the messages posted, the user groups."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}

    def clear(self) -> None:
        """Forget the messages (the user groups are the workspace's, not the fleet's)."""
        with self.lock:
            self.messages.clear()


def mint(
    tokens: Tokens,
    owner: str,
    kind: str = "slack.bot-token",
    ip_allowlist: list[str] | None = None,
) -> Token:
    """A bot (`xoxb-`) or user (`xoxp-`) token of a fresh team; with `ip_allowlist` (CIDRs)
    it works only from those addresses."""
    team, bot, user = "T0" + rand(9).upper(), "B0" + rand(9).upper(), "U0" + rand(9).upper()
    prefix = "xoxb" if kind == "slack.bot-token" else "xoxp"
    secret = f"{prefix}-{rand(12, '0123456789')}-{rand(13, '0123456789')}-{rand(24)}"
    return tokens.add(
        Token(
            "slack",
            kind,
            f"{team}/{bot if prefix == 'xoxb' else user}",
            secret,
            owner,
            meta={
                "team_id": team,
                "user_id": user,
                "bot_id": bot,
                "ip_allowlist": [str(ipaddress.ip_network(n)) for n in ip_allowlist or ()],
            },
        )
    )


async def _token(request: Request) -> tuple[str | None, dict[str, Any]]:
    form: dict[str, Any] = {}
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        # slack-sdk sends `auth.test` as JSON with an empty body; Slack accepts that.
        form = dict(json.loads(body)) if body.strip() else {}
    elif body:  # application/x-www-form-urlencoded, what Slack clients send
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    auth = request.headers.get("authorization", "")
    token = (
        auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else form.get("token")
    )
    return (str(token) if token else None), form


def allowed(token: Token, request: Request) -> bool:
    """Whether the request comes from an address the token's IP allowlist admits."""
    networks = token.meta.get("ip_allowlist") or ()
    if not networks:
        return True
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in networks)


def routes(tokens: Tokens, board: Board) -> list[Route]:
    """The Web API methods, and the sandbox-only view of what was posted."""

    def limited() -> JSONResponse | None:
        fault = tokens.fault("slack")
        if fault is None:
            return None
        headers = {"Retry-After": str(int(fault.retry_after or 1))} if fault.status == 429 else {}
        body = {"ok": False, "error": "ratelimited" if fault.status == 429 else "fatal_error"}
        return JSONResponse(body, status_code=fault.status, headers=headers)

    def auth_error(token: Token | None, raw: str | None, request: Request) -> JSONResponse | None:
        if not raw:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if token is None or not allowed(token, request):
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        if not token.alive():
            return JSONResponse({"ok": False, "error": "token_revoked"})
        return None

    async def auth_test(request: Request) -> JSONResponse:
        if (fault := limited()) is not None:
            return fault
        raw, _ = await _token(request)
        token = tokens.by_secret(raw)
        if (error := auth_error(token, raw, request)) is not None:
            return error
        assert token is not None  # noqa: S101
        meta = token.meta
        return JSONResponse(
            {
                "ok": True,
                "url": "https://sandbox.slack.test/",
                "team": "Sandbox",
                "user": token.owner,
                "team_id": meta["team_id"],
                "user_id": meta["user_id"],
                "bot_id": meta["bot_id"],
            }
        )

    async def auth_revoke(request: Request) -> JSONResponse:
        if (fault := limited()) is not None:
            return fault
        raw, form = await _token(request)
        token = tokens.by_secret(raw)
        if (error := auth_error(token, raw, request)) is not None:
            return error
        assert token is not None  # noqa: S101
        if str(form.get("test", "")).lower() in ("1", "true"):
            return JSONResponse({"ok": True, "revoked": False})
        token.status = "revoked"
        return JSONResponse({"ok": True, "revoked": True})

    async def post_message(request: Request) -> JSONResponse:
        if (fault := limited()) is not None:
            return fault
        raw, form = await _token(request)
        token = tokens.by_secret(raw)
        if (error := auth_error(token, raw, request)) is not None:
            return error
        method = request.url.path.rsplit("/", 1)[-1]
        # chat.update keeps the message's ts; chat.postMessage makes a new one.
        ts = str(form.get("ts")) if method == "chat.update" else f"{time.time():.6f}"
        message = {
            "channel": form.get("channel"),
            "text": form.get("text"),
            "ts": ts,
            "thread_ts": form.get("thread_ts"),
            "blocks": form.get("blocks"),
            "method": method,
            "user": form.get("user"),
            "token_owner": token.owner if token else None,
        }
        with board.lock:
            board.messages.append(message)
        return JSONResponse(
            {
                "ok": True,
                "channel": form.get("channel"),
                "ts": ts,
                "message": {"text": form.get("text"), "ts": ts},
            }
        )

    async def usergroup_members(request: Request) -> JSONResponse:
        if (fault := limited()) is not None:
            return fault
        raw, form = await _token(request)
        token = tokens.by_secret(raw)
        if (error := auth_error(token, raw, request)) is not None:
            return error
        group = str(form.get("usergroup") or request.query_params.get("usergroup", ""))
        with board.lock:
            members = board.usergroups.get(group)
        if members is None:
            return JSONResponse({"ok": False, "error": "no_such_subteam"})
        return JSONResponse({"ok": True, "users": list(members)})

    async def messages(request: Request) -> JSONResponse:
        with board.lock:
            return JSONResponse(list(board.messages))

    async def usergroups(request: Request) -> JSONResponse:
        body = await request.json()
        with board.lock:
            board.usergroups.update(body)
        return JSONResponse({"ok": True})

    return [
        Route("/_sandbox/slack/messages", messages, methods=["GET"]),
        Route("/_sandbox/slack/usergroups", usergroups, methods=["POST"]),
        Route("/slack/api/usergroups.users.list", usergroup_members, methods=["POST", "GET"]),
        Route("/slack/api/auth.test", auth_test, methods=["POST", "GET"]),
        Route("/slack/api/auth.revoke", auth_revoke, methods=["POST", "GET"]),
        Route("/slack/api/chat.postMessage", post_message, methods=["POST"]),
        Route("/slack/api/chat.update", post_message, methods=["POST"]),
        Route("/slack/api/chat.postEphemeral", post_message, methods=["POST"]),
    ]
