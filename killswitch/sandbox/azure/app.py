"""Azure stand-in, served over HTTPS with a local CA made by trustme (azure-core refuses
bearer tokens over plain http): ARM role assignments at api-version 2022-04-01, Microsoft
Graph service principals, and the Entra token endpoint (OpenID configuration and
client-credentials grant).

Shapes: ARM role assignments as the generated 2022-04-01 models of azure-mgmt-authorization
(`{"id", "type", "name", "properties": {...}}`, paging by `nextLink`, delete → 200 with the
deleted assignment or 204 when gone); Graph errors `{"error": {"code", "message"}}`; Entra
errors `{"error", "error_description": "AADSTS…", "error_codes": […]}`. ARM and Graph accept
only bearer tokens this endpoint issued to the kill switch's own app. Sandbox-only seeding
lives under `/_sandbox/azure/`.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.azure import directory, modes
from killswitch.sandbox.azure.state import (
    API_VERSION,
    ASSIGNMENTS,
    PAGE,
    Application,
    AzureState,
    Principal,
    arm_error,
    graph_error,
    missing,
)
from killswitch.sandbox.azure.token import answer
from killswitch.sandbox.serving import ThreadedServer


def build(state: AzureState) -> Starlette:
    """The stand-in's routes: Entra token endpoint, Graph, ARM, and the sandbox-only seeding."""

    def authorized(request: Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        with state.lock:
            return state.tokens.get(token, 0) > time.time()

    def origin(request: Request) -> str:
        """Where the client reached us: direct, or through the sandbox's TLS fault proxy
        (the endpoints we hand out must keep it on the path it came by)."""
        host = request.headers.get("host")
        return f"https://{host}" if host else state.base_url

    async def openid(request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        base = f"{origin(request)}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "tenant_region_scope": "EU",
            }
        )

    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        return answer(state, request.path_params["tenant"], form)

    async def principals(request: Request) -> Response:
        if not authorized(request):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        wanted = request.query_params.get("$filter", "")
        match = re.fullmatch(r"tags/any\(t:\s*t eq '([^']*)'\)", wanted.strip()) if wanted else None
        if wanted and match is None:
            return graph_error(400, "Request_UnsupportedQuery", f"Unsupported query: {wanted}")
        with state.lock:
            found = [
                p.body()
                for p in state.principals.values()
                if match is None or match.group(1) in p.tags
            ]
        return JSONResponse(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals",
                "value": found,
            }
        )

    async def principal(request: Request) -> Response:
        if not authorized(request):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        ident = request.path_params["id"]
        # The body is read before the lock: never hold a thread lock across an await.
        body = await request.json() if request.method == "PATCH" else {}
        with state.lock:
            found = state.principals.get(ident)
            if found is None:
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    missing(ident),
                )
            if request.method == "PATCH":
                if set(body) - {"accountEnabled", "tags", "displayName"}:
                    return graph_error(
                        400, "Request_BadRequest", "Invalid property in the request."
                    )
                enabled = bool(body.get("accountEnabled", found.enabled))
                if found.enabled and not enabled:
                    state.disabled_at[found.id] = time.time()
                found.enabled = enabled
                return Response(status_code=204)
            return JSONResponse(found.body())

    async def password(request: Request) -> Response:
        if not authorized(request):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        ident, verb = request.path_params["id"], request.path_params["verb"]
        body = await request.json()
        with state.lock:
            found = state.principals.get(ident)
            if found is None:
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    missing(ident),
                )
            return directory.password_action(state, verb, body, found.secrets, found.app_id)

    async def arm(request: Request) -> Response:
        path = "/" + request.path_params["path"]
        match = ASSIGNMENTS.match(path)
        if match is None:
            return arm_error(
                404, "InvalidResourceType", f"The resource type could not be found: {path}"
            )
        if request.query_params.get("api-version") != API_VERSION:
            return arm_error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{request.query_params.get('api-version')}' is invalid.",
            )
        if not authorized(request):
            return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        scope, name = "/" + match.group("scope"), match.group("name")
        if not scope.startswith(f"/subscriptions/{state.subscription_id}"):
            return arm_error(
                404,
                "SubscriptionNotFound",
                f"The subscription '{scope.split('/')[2]}' could not be found.",
            )
        if name is None:
            return _list(request, scope)
        ident = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        body = await request.json() if request.method == "PUT" else {}  # before the lock
        with state.lock:
            existing = state.assignments.get(ident.lower())
            if request.method == "GET":
                if existing is None:
                    return arm_error(
                        404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
                    )
                return JSONResponse(existing)
            if request.method == "DELETE":
                if existing is None:
                    return Response(status_code=204)
                del state.assignments[ident.lower()]
                return JSONResponse(existing)
            props = body.get("properties") or {}
            if not props.get("roleDefinitionId") or not props.get("principalId"):
                return arm_error(
                    400,
                    "InvalidRoleAssignmentRequest",
                    "roleDefinitionId and principalId are required.",
                )
            if existing is not None:
                # ARM is not idempotent here: a PUT of an assignment that exists, identical or
                # not, answers 409 in many regions (azure-cli #8568, #31995): the stricter case.
                return arm_error(409, "RoleAssignmentExists", "The role assignment already exists.")
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            created = {
                "id": ident,
                "type": "Microsoft.Authorization/roleAssignments",
                "name": name,
                "properties": {
                    "roleDefinitionId": props["roleDefinitionId"],
                    "principalId": props["principalId"],
                    "principalType": props.get("principalType", "ServicePrincipal"),
                    "scope": scope,
                    "condition": props.get("condition"),
                    "conditionVersion": props.get("conditionVersion"),
                    "createdOn": now,
                    "updatedOn": now,
                    "createdBy": state.own_app_id,
                    "updatedBy": state.own_app_id,
                    "delegatedManagedIdentityResourceId": None,
                    "description": props.get("description"),
                },
            }
            state.assignments[ident.lower()] = created
            return JSONResponse(created, status_code=201)

    def _list(request: Request, scope: str) -> Response:
        wanted = request.query_params.get("$filter", "")
        principal_id, through_groups = "", False
        if wanted:
            found = re.fullmatch(
                r"(?:assignedTo\('([^']+)'\)|principalId eq '([^']+)')", wanted.strip()
            )
            if found is None:
                return arm_error(
                    400, "UnsupportedQuery", f"The filter '{wanted}' is not supported."
                )
            principal_id = found.group(1) or found.group(2)
            # assignedTo() also returns what the principal holds through its groups
            # (transitively); principalId eq is the principal's own assignments only.
            through_groups = found.group(1) is not None
        start = int(request.query_params.get("$skiptoken", "0"))
        with state.lock:
            holders = {principal_id}
            if through_groups:
                holders |= state.groups_of(principal_id)
            matching = [
                a
                for a in sorted(state.assignments.values(), key=lambda a: a["id"])
                # At the scope and below it (and above: the subscription holds them all).
                if a["properties"]["scope"].lower().startswith(scope.lower())
                and (not principal_id or a["properties"]["principalId"] in holders)
            ]
        page = matching[start : start + PAGE]
        body: dict[str, Any] = {"value": page}
        if start + PAGE < len(matching):
            body["nextLink"] = (
                f"{origin(request)}/arm{scope}/providers/Microsoft.Authorization/roleAssignments"
                f"?api-version={API_VERSION}&$skiptoken={start + PAGE}"
                + (f"&$filter={wanted}" if wanted else "")
            )
        return JSONResponse(body)

    async def seed(request: Request) -> JSONResponse:
        """Sandbox only: {"displayName", "tags"} → a service principal and its app."""
        body = await request.json()
        principal = Principal(
            id=str(uuid.uuid4()),
            app_id=str(uuid.uuid4()),
            display_name=str(body["displayName"]),
            tags=[str(t) for t in body.get("tags", [])],
        )
        application = Application(str(uuid.uuid4()), principal.app_id, principal.display_name)
        with state.lock:
            state.principals[principal.id] = principal
            state.applications[application.id] = application
        return JSONResponse(principal.body())

    async def reset(request: Request) -> JSONResponse:
        state.reset()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/{tenant}/v2.0/.well-known/openid-configuration", openid, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            Route("/graph/v1.0/servicePrincipals", principals, methods=["GET"]),
            Route("/graph/v1.0/servicePrincipals/{id}", principal, methods=["GET", "PATCH"]),
            Route("/graph/v1.0/servicePrincipals/{id}/{verb}", password, methods=["POST"]),
            Route("/_sandbox/azure/service-principals", seed, methods=["POST"]),
            Route("/_sandbox/azure/reset", reset, methods=["POST"]),
            *directory.routes(state, authorized),
            *modes.routes(state),
            Route("/arm/{path:path}", arm, methods=["GET", "PUT", "DELETE"]),
        ]
    )


class AzureServer:
    """The stand-in over TLS on a free loopback port; the CA that signed its certificate is
    written to `ca_path` for clients to trust."""

    def __init__(self, state: AzureState, directory: Path) -> None:
        import trustme

        self.state = state
        authority = trustme.CA()
        issued = authority.issue_cert("127.0.0.1", "localhost")
        self.ca_path = directory / "azure-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_path))
        chain, key = directory / "azure-cert.pem", directory / "azure-key.pem"
        self.chain, self.key = chain, key
        issued.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        issued.cert_chain_pems[0].write_to_path(str(chain))
        for extra in issued.cert_chain_pems[1:]:
            extra.write_to_path(str(chain), append=True)
        self.http = ThreadedServer("azure-stand-in", tls=(chain, key))
        self.port = self.http.port
        state.base_url = f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve the stand-in (its port is known from construction)."""
        self.http.start(build(self.state))

    def stop(self) -> None:
        self.http.stop()

    def describe(self) -> dict[str, str]:
        return {
            "url": self.state.base_url,
            "arm_url": f"{self.state.base_url}/arm",
            "graph_url": f"{self.state.base_url}/graph",
            "authority": f"127.0.0.1:{self.port}",
            "tenant_id": self.state.tenant_id,
            "subscription_id": self.state.subscription_id,
            "ca_cert": str(self.ca_path),
            "client_id": self.state.own_app_id,
            "client_secret": self.state.own_secret,
        }
