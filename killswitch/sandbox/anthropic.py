"""Anthropic's sandbox plug-in, on the shared HTTP app: the Admin API's API keys (list with
`limit`/`after_id` paging, get, update status) and GET /v1/models.

Errors in Anthropic's shape: `{"type": "error", "error": {"type", "message"},
"request_id"}`. An inactive or unknown key gets 401 `authentication_error`; a request without
`anthropic-version` 400; a path Anthropic does not serve (a wrong base URL, a typo) 404
`not_found_error`, whatever the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.http import PROXY
from killswitch.sandbox.minting import Mint, Minted
from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.tokens import Token, Tokens, page, rand
from killswitch.secrets import MaterialStore

WORKSPACE = "wrkspc_sandbox01"


def mint(tokens: Tokens, owner: str) -> Token:
    key_id = "apikey_01" + rand(22)
    secret = "sk-ant-api03-" + rand(93) + "AA"
    return tokens.add(Token("anthropic", "anthropic.api-key", key_id, secret, owner))


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_" + rand(24),
        },
        status_code=status,
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


def routes(tokens: Tokens, admin_key: str) -> list[Route]:
    """The stand-in's endpoints; the admin ones want `admin_key`."""

    def fault_response() -> Response | None:
        fault = tokens.fault("anthropic")
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
            if key != admin_key:
                return _error(401, "authentication_error", "invalid x-api-key")
            return None
        token = tokens.used(key)
        if token is None:
            return _error(401, "authentication_error", "invalid x-api-key")
        return None

    async def api_key(request: Request) -> Response:
        if (refusal := refused(request, admin=True)) is not None:
            return refusal
        token = tokens.by_ref("anthropic", request.path_params["key"])
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
        with tokens.lock:
            found = [
                t
                for t in tokens.tokens.values()
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

    async def unknown(request: Request) -> Response:
        return _error(404, "not_found_error", "Not Found")

    every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/anthropic/v1/organizations/api_keys", api_keys, methods=["GET"]),
        Route("/anthropic/v1/organizations/api_keys/{key}", api_key, methods=["GET", "POST"]),
        Route("/anthropic/v1/models", models, methods=["GET"]),
        # Last: any other path under the API root is one Anthropic does not serve.
        Route("/anthropic/{path:path}", unknown, methods=every),
    ]


@dataclass(frozen=True, slots=True)
class AnthropicStandIn:
    """Routes on the shared HTTP app, behind its proxy; an API key per agent."""

    fault_target: str | None = PROXY

    def serve(self, host: Host) -> Hosted:
        """Its routes, with a fresh admin key (`stand_ins.saas.admin_keys.anthropic`)."""
        admin_key = "sk-ant-admin01-" + rand(86) + "AA"

        def bulk(body: Mapping[str, Any]) -> int:
            owner, count = str(body["owner"]), int(body["count"])
            for _ in range(count):
                mint(host.tokens, owner)
            return count

        return Hosted(
            stand_ins={PROXY: {"admin_keys": {"anthropic": admin_key}}},
            routes=routes(host.tokens, admin_key),
            mint=lambda body: mint(host.tokens, str(body["owner"])),
            bulk=bulk,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Minted:
        """Nothing to prepare: the admin key came with the stand-in."""
        return Minted(
            "anthropic",
            sandbox,
            (Mint("api_key"),),
            "/anthropic/v1",
            admin_key=str(sandbox.stand_ins[PROXY]["admin_keys"]["anthropic"]),
            orphans=(),
        )

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Minted:
        """As `bootstrap`: nothing to remember."""
        return self.bootstrap(sandbox)


STAND_IN: StandIn = AnthropicStandIn()
