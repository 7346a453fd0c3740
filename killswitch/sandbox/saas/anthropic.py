"""Anthropic stand-in: the Admin API's API keys (list with `limit`/`after_id` paging, get,
update status) and GET /v1/models.

Errors in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`. An inactive
or unknown key gets 401 `authentication_error`; a request without `anthropic-version` 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.saas.state import State, Token, page, rand

WORKSPACE = "wrkspc_sandbox01"


def mint(state: State, owner: str) -> Token:
    key_id = "apikey_01" + rand(22)
    secret = "sk-ant-api03-" + rand(93) + "AA"
    return state.add(Token("anthropic", "anthropic.api-key", key_id, secret, owner))


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _key(token: Token) -> dict[str, Any]:
    return {
        "type": "api_key",
        "id": token.ref,
        "name": token.owner,
        "status": token.status,
        "created_at": datetime.fromtimestamp(token.created_at, UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "expires_at": None,
        "partial_key_hint": token.secret[:14] + "..." + token.secret[-4:],
        "workspace_id": WORKSPACE,
        "created_by": {"type": "user", "id": "user_sandbox"},
    }


def routes(state: State) -> list[Route]:
    def fault_response() -> Response | None:
        fault = state.fault("anthropic")
        if fault is None:
            return None
        response = _error(
            fault.status,
            "rate_limit_error" if fault.status == 429 else "api_error",
            "sandbox fault",
        )
        if fault.retry_after:
            response.headers["retry-after"] = str(int(fault.retry_after))
        return response

    def refused(request: Request, admin: bool) -> Response | None:
        if (fault := fault_response()) is not None:
            return fault
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        key = request.headers.get("x-api-key", "")
        if admin:
            if key != state.admin_keys["anthropic"]:
                return _error(401, "authentication_error", "invalid x-api-key")
            return None
        token = state.used(key)
        if token is None:
            return _error(401, "authentication_error", "invalid x-api-key")
        return None

    async def api_key(request: Request) -> Response:
        if (refusal := refused(request, admin=True)) is not None:
            return refusal
        token = state.by_ref("anthropic", request.path_params["key"])
        if token is None:
            return _error(404, "not_found_error", "API key not found")
        if request.method == "POST":
            body = await request.json()
            status = body.get("status")
            if status not in (None, "active", "inactive", "archived"):
                return _error(400, "invalid_request_error", f"invalid status {status!r}")
            if status and token.status == "archived":
                return _error(400, "invalid_request_error", "archived keys cannot change")
            token.status = status or token.status
        return JSONResponse(_key(token))

    async def api_keys(request: Request) -> Response:
        if (refusal := refused(request, admin=True)) is not None:
            return refusal
        status = request.query_params.get("status")
        with state.lock:
            found = [
                t
                for t in state.tokens.values()
                if t.provider == "anthropic" and (status is None or t.status == status)
            ]
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "20"))))
        except ValueError:
            return _error(400, "invalid_request_error", "limit must be an integer")
        chunk, more = page(found, request.query_params.get("after_id"), limit, "ref")
        return JSONResponse(
            {
                "data": [_key(t) for t in chunk],
                "has_more": more,
                "first_id": chunk[0].ref if chunk else None,
                "last_id": chunk[-1].ref if chunk else None,
            }
        )

    async def models(request: Request) -> Response:
        if (refusal := refused(request, admin=False)) is not None:
            return refusal
        return JSONResponse(
            {
                "data": [
                    {"type": "model", "id": "claude-sandbox", "display_name": "Claude (sandbox)"}
                ],
                "has_more": False,
                "first_id": "claude-sandbox",
                "last_id": "claude-sandbox",
            }
        )

    return [
        Route("/anthropic/v1/organizations/api_keys", api_keys, methods=["GET"]),
        Route("/anthropic/v1/organizations/api_keys/{key}", api_key, methods=["GET", "POST"]),
        Route("/anthropic/v1/models", models, methods=["GET"]),
    ]
