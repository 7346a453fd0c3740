"""OpenAI's sandbox plug-in, on the shared HTTP app: the admin API's projects (list) and
project API keys (list, get, delete), cursor-paged as OpenAI pages them (`limit`, `after`,
`has_more`), and GET /v1/models.

Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`; a wrong key's
message shows only a masked hint of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.http import PROXY
from killswitch.sandbox.minting import Mint, Minted
from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.tokens import Token, Tokens, page, rand
from killswitch.secrets import MaterialStore

PROJECT = "proj_sandbox0001"


def mint(tokens: Tokens, owner: str, project: str = PROJECT) -> Token:
    key_id = "key_" + rand(16)
    secret = "sk-proj-" + rand(64)
    return tokens.add(
        Token(
            "openai",
            "openai.api-key",
            f"{project}/{key_id}",
            secret,
            owner,
            meta={"project": project, "key_id": key_id},
        )
    )


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


def _key(token: Token) -> dict[str, Any]:
    hint = token.secret[:8] + "..." + token.secret[-4:]
    return {
        "object": "organization.project.api_key",
        "id": token.meta["key_id"],
        "name": token.owner,
        "redacted_value": hint,
        "created_at": int(token.created_at),
        "last_used_at": int(token.last_used_at) if token.last_used_at else None,
        "owner": {"type": "service_account", "service_account": {"name": token.owner}},
    }


def _limit(request: Request) -> int:
    try:
        return max(1, min(100, int(request.query_params.get("limit", "20"))))
    except ValueError:
        return 20


def _listing(data: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


def routes(tokens: Tokens, admin_key: str) -> list[Route]:
    """The stand-in's endpoints; the admin ones want `admin_key`."""

    def bearer(request: Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ").strip()

    def fault_response() -> Response | None:
        fault = tokens.fault("openai")
        if fault is None:
            return None
        headers = {"Retry-After": str(int(fault.retry_after or 1))} if fault.retry_after else {}
        response = _error(fault.status, "Rate limit reached", "requests", "rate_limit_exceeded")
        response.headers.update(headers)
        return response

    def admin_refused(request: Request) -> Response | None:
        if bearer(request) != admin_key:
            return _error(401, "Invalid admin key", "invalid_request_error", "invalid_api_key")
        return None

    async def keys(request: Request) -> Response:
        if (refused := fault_response() or admin_refused(request)) is not None:
            return refused
        project = request.path_params["project"]
        with tokens.lock:
            found = [
                t
                for t in tokens.tokens.values()
                if t.provider == "openai" and t.meta["project"] == project and t.status == "active"
            ]
        chunk, more = page(found, request.query_params.get("after"), _limit(request), "key_id")
        return JSONResponse(_listing([_key(t) for t in chunk], more))

    async def projects(request: Request) -> Response:
        if (refused := fault_response() or admin_refused(request)) is not None:
            return refused
        with tokens.lock:
            names = sorted(
                {t.meta["project"] for t in tokens.tokens.values() if t.provider == "openai"}
            )
        names = sorted({PROJECT, *names})
        after = request.query_params.get("after")
        start = names.index(after) + 1 if after in names else 0
        chunk = names[start : start + _limit(request)]
        data = [
            {
                "id": n,
                "object": "organization.project",
                "name": n,
                "created_at": 1700000000,
                "archived_at": None,
                "status": "active",
            }
            for n in chunk
        ]
        return JSONResponse(_listing(data, start + len(chunk) < len(names)))

    async def key(request: Request) -> Response:
        if (refused := fault_response() or admin_refused(request)) is not None:
            return refused
        ref = f"{request.path_params['project']}/{request.path_params['key']}"
        token = tokens.by_ref("openai", ref)
        if token is None or token.status != "active":
            return _error(
                404, f"No such API key: {request.path_params['key']}", "invalid_request_error", None
            )
        if request.method == "DELETE":
            token.status = "deleted"
            return JSONResponse(
                {
                    "object": "organization.project.api_key.deleted",
                    "id": token.meta["key_id"],
                    "deleted": True,
                }
            )
        return JSONResponse(_key(token))

    async def models(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        secret = bearer(request)
        token = tokens.used(secret)
        if token is None:
            masked = (secret[:8] + "*" * 4 + secret[-4:]) if len(secret) > 12 else "****"
            return _error(
                401,
                f"Incorrect API key provided: {masked}.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "gpt-sandbox", "object": "model", "owned_by": "system"}],
            }
        )

    return [
        Route("/openai/v1/organization/projects", projects, methods=["GET"]),
        Route("/openai/v1/organization/projects/{project}/api_keys", keys, methods=["GET"]),
        Route(
            "/openai/v1/organization/projects/{project}/api_keys/{key}",
            key,
            methods=["GET", "DELETE"],
        ),
        Route("/openai/v1/models", models, methods=["GET"]),
    ]


@dataclass(frozen=True, slots=True)
class OpenaiStandIn:
    """Routes on the shared HTTP app, behind its proxy; a project API key per agent; an
    orphaned one (`intern-notebook`) for the sweep."""

    fault_target: str | None = PROXY

    def serve(self, host: Host) -> Hosted:
        """Its routes, with a fresh admin key (`stand_ins.saas.admin_keys.openai`)."""
        admin_key = "sk-admin-" + rand(48)

        def bulk(body: Mapping[str, Any]) -> int:
            owner, count = str(body["owner"]), int(body["count"])
            for _ in range(count):
                mint(host.tokens, owner, str(body.get("project", PROJECT)))
            return count

        return Hosted(
            stand_ins={PROXY: {"admin_keys": {"openai": admin_key}}},
            routes=routes(host.tokens, admin_key),
            mint=lambda body: mint(
                host.tokens, str(body["owner"]), str(body.get("project", PROJECT))
            ),
            bulk=bulk,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Minted:
        """Nothing to prepare: the admin key came with the stand-in."""
        return Minted(
            "openai",
            sandbox,
            (Mint("api_key"),),
            "/openai/v1",
            admin_key=str(sandbox.stand_ins[PROXY]["admin_keys"]["openai"]),
            orphans=("intern-notebook",),
        )

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Minted:
        """As `bootstrap`: nothing to remember."""
        return self.bootstrap(sandbox)


STAND_IN: StandIn = OpenaiStandIn()
