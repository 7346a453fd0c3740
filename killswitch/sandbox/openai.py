"""OpenAI's sandbox plug-in, on the shared HTTP app: the admin API's projects (list),
project API keys (list, get, delete) and project service accounts (list, get, delete),
cursor-paged as OpenAI pages them (`limit`, `after`, `has_more`), and GET /v1/models.

As the Administration API (openai-openapi) describes it: a key owned by a service account
cannot be deleted through `…/api_keys/{id}` (400, ErrorResponse): deleting its service
account removes it; a key listing without `owner_project_access` applies membership-based
visibility and leaves out the keys of owners without access to the project (`any` lists
every enabled key). A restricted key without `api.model.read` gets 401 with `code: null`
on GET /models; a deleted or unknown key 401 `invalid_api_key`.

Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`; a wrong key's
message shows only a masked hint of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass
class Accounts:
    """The projects' service accounts (id -> its fields); a deleted one is forgotten."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, project: str, name: str) -> dict[str, Any]:
        account_id = "svc_acct_" + rand(24)
        account: dict[str, Any] = {
            "object": "organization.project.service_account",
            "id": account_id,
            "name": name,
            "role": "member",
            "created_at": int(time.time()),
            "project": project,
        }
        with self.lock:
            self.accounts[account_id] = account
        return account

    def clear(self) -> None:
        with self.lock:
            self.accounts.clear()


def mint(
    tokens: Tokens,
    accounts: Accounts,
    owner: str,
    project: str = PROJECT,
    *,
    service_account: bool = False,
    scopes: list[str] | None = None,
    owner_access: str = "active",
) -> Token:
    """A project key of a user, or of a fresh service account (named after `owner`);
    `scopes` makes it a restricted key; `owner_access` whether its owner still has access
    to the project."""
    key_id = "key_" + rand(16)
    secret = ("sk-svcacct-" if service_account else "sk-proj-") + rand(64)
    meta: dict[str, Any] = {
        "project": project,
        "key_id": key_id,
        "owner_access": owner_access,
        "scopes": scopes,
    }
    if service_account:
        meta["service_account"] = accounts.add(project, owner)["id"]
    return tokens.add(
        Token("openai", "openai.api-key", f"{project}/{key_id}", secret, owner, meta=meta)
    )


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


def _public(account: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in account.items() if k != "project"}


def _key(token: Token, accounts: Accounts) -> dict[str, Any]:
    hint = token.secret[:8] + "..." + token.secret[-4:]
    owner: dict[str, Any]
    account_id = token.meta.get("service_account")
    if account_id:
        with accounts.lock:
            account = accounts.accounts.get(account_id, {"id": account_id, "name": token.owner})
        fields = ("id", "name", "created_at", "role")
        owner = {
            "type": "service_account",
            "service_account": {k: account.get(k) for k in fields},
        }
    else:
        owner = {
            "type": "user",
            "user": {
                "id": "user_sandbox",
                "email": "owner@sandbox.test",
                "name": "Sandbox Owner",
                "created_at": 1700000000,
                "role": "owner",
            },
        }
    return {
        "object": "organization.project.api_key",
        "id": token.meta["key_id"],
        "name": token.owner,
        "redacted_value": hint,
        "created_at": int(token.created_at),
        "last_used_at": int(token.last_used_at) if token.last_used_at else None,
        "owner_project_access": token.meta.get("owner_access", "active"),
        "owner": owner,
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


SCOPE_DENIED = (
    "You have insufficient permissions for this operation. Missing scopes: api.model.read. "
    "Check that you have the correct role in your organization and project, and if you're "
    "using a restricted API key, that it has the necessary scopes."
)


def routes(tokens: Tokens, accounts: Accounts, admin_key: str) -> list[Route]:
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
        if (fault := fault_response()) is not None:
            return fault
        if bearer(request) != admin_key:
            return _error(401, "Invalid admin key", "invalid_request_error", "invalid_api_key")
        return None

    def live(project: str) -> list[Token]:
        with tokens.lock:
            return [
                t
                for t in tokens.tokens.values()
                if t.provider == "openai" and t.meta["project"] == project and t.status == "active"
            ]

    async def keys(request: Request) -> Response:
        if (refused := admin_refused(request)) is not None:
            return refused
        access = request.query_params.get("owner_project_access")
        if access not in (None, "active", "inactive", "any"):
            return _error(
                400,
                f"Invalid value for 'owner_project_access': {access!r}",
                "invalid_request_error",
                None,
            )
        # Without the parameter: membership-based visibility (owners with access only).
        wanted = {"active", "inactive"} if access == "any" else {access or "active"}
        found = [
            t for t in live(request.path_params["project"]) if t.meta["owner_access"] in wanted
        ]
        chunk, more = page(found, request.query_params.get("after"), _limit(request), "key_id")
        return JSONResponse(_listing([_key(t, accounts) for t in chunk], more))

    async def projects(request: Request) -> Response:
        if (refused := admin_refused(request)) is not None:
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
        if (refused := admin_refused(request)) is not None:
            return refused
        ref = f"{request.path_params['project']}/{request.path_params['key']}"
        token = tokens.by_ref("openai", ref)
        if token is None or token.status != "active":
            return _error(
                404, f"No such API key: {request.path_params['key']}", "invalid_request_error", None
            )
        if request.method == "DELETE":
            if token.meta.get("service_account"):
                return _error(
                    400,
                    "API keys owned by a service account cannot be deleted; delete the "
                    "service account instead.",
                    "invalid_request_error",
                    None,
                )
            token.status = "deleted"
            return JSONResponse(
                {
                    "object": "organization.project.api_key.deleted",
                    "id": token.meta["key_id"],
                    "deleted": True,
                }
            )
        return JSONResponse(_key(token, accounts))

    def in_project(project: str) -> list[dict[str, Any]]:
        with accounts.lock:
            return [a for a in accounts.accounts.values() if a["project"] == project]

    async def service_accounts(request: Request) -> Response:
        if (refused := admin_refused(request)) is not None:
            return refused
        found = in_project(request.path_params["project"])
        after = request.query_params.get("after")
        ids = [a["id"] for a in found]
        start = ids.index(after) + 1 if after in ids else 0
        chunk = found[start : start + _limit(request)]
        more = start + len(chunk) < len(found)
        return JSONResponse(_listing([_public(a) for a in chunk], more))

    async def service_account(request: Request) -> Response:
        if (refused := admin_refused(request)) is not None:
            return refused
        project, account_id = request.path_params["project"], request.path_params["account"]
        with accounts.lock:
            account = accounts.accounts.get(account_id)
            if account is None or account["project"] != project:
                return _error(
                    404, f"No such service account: {account_id}", "invalid_request_error", None
                )
            if request.method == "DELETE":
                del accounts.accounts[account_id]
        if request.method == "GET":
            return JSONResponse(_public(account))
        # Deleting the service account deletes every key it holds.
        for token in live(project):
            if token.meta.get("service_account") == account_id:
                token.status = "deleted"
        return JSONResponse(
            {
                "object": "organization.project.service_account.deleted",
                "id": account_id,
                "deleted": True,
            }
        )

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
        scopes = token.meta.get("scopes")
        if scopes is not None and "api.model.read" not in scopes:
            return _error(401, SCOPE_DENIED, "invalid_request_error", None)
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "gpt-sandbox", "object": "model", "owned_by": "system"}],
            }
        )

    projects_path = "/openai/v1/organization/projects/{project}"
    return [
        Route("/openai/v1/organization/projects", projects, methods=["GET"]),
        Route(f"{projects_path}/api_keys", keys, methods=["GET"]),
        Route(f"{projects_path}/api_keys/{{key}}", key, methods=["GET", "DELETE"]),
        Route(f"{projects_path}/service_accounts", service_accounts, methods=["GET"]),
        Route(
            f"{projects_path}/service_accounts/{{account}}",
            service_account,
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
        """Its routes, with a fresh admin key (`stand_ins.saas.admin_keys.openai`);
        `/_sandbox/seed` mints `{"project", "service_account", "scopes", "owner_access"}`."""
        admin_key = "sk-admin-" + rand(48)
        accounts = Accounts()

        def one(body: Mapping[str, Any]) -> Token:
            scopes = body.get("scopes")
            return mint(
                host.tokens,
                accounts,
                str(body["owner"]),
                str(body.get("project", PROJECT)),
                service_account=bool(body.get("service_account")),
                scopes=None if scopes is None else [str(s) for s in scopes],
                owner_access=str(body.get("owner_access", "active")),
            )

        def bulk(body: Mapping[str, Any]) -> int:
            count = int(body["count"])
            for _ in range(count):
                one(body)
            return count

        return Hosted(
            stand_ins={PROXY: {"admin_keys": {"openai": admin_key}}},
            routes=routes(host.tokens, accounts, admin_key),
            mint=one,
            bulk=bulk,
            reset=accounts.clear,
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
