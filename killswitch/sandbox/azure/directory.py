"""Microsoft Graph v1.0 beyond service principals: security groups and their members
(nested groups too), a principal's `memberOf` / `transitiveMemberOf`, and application
objects with their own `passwordCredentials` and `keyCredentials`.

Shapes as Graph's: `{"value": [...]}` with `@odata.type` on directory objects; adding a
member twice is 400, removing a non-member 404; `removePassword` of an unknown keyId 400;
`PATCH /applications/{id}` replaces `keyCredentials` as a whole (how a certificate is removed
without the proof of possession `removeKey` wants)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.azure.state import AzureState, Group, Secret, graph_error, missing

GRAPH = "/graph/v1.0"
APP_FILTER = re.compile(r"appId eq '([^']+)'")


def password_action(
    state: AzureState, verb: str, body: dict[str, Any], passwords: dict[str, Secret], app_id: str
) -> Response:
    """`POST …/addPassword` / `…/removePassword` on a service principal or an application
    (Graph answers both alike); call with `state.lock` held."""
    if verb == "addPassword":
        secret = Secret.new(str((body.get("passwordCredential") or {}).get("displayName", "")))
        passwords[secret.key_id] = secret
        return JSONResponse(secret.credential(with_text=True))
    if verb == "removePassword":
        gone = passwords.pop(str(body.get("keyId", "")), None)
        if gone is None:
            return graph_error(
                400, "Request_BadRequest", "No password credential found with keyId."
            )
        state.removed.append((app_id, gone.value, time.time()))
        return Response(status_code=204)
    return graph_error(400, "Request_BadRequest", f"Unsupported action {verb}")


def routes(state: AzureState, authorized: Callable[[Request], bool]) -> list[Route]:
    """Graph's groups, memberships and applications; sandbox-only seeding of groups and
    certificates under `/_sandbox/azure/`."""

    def unauthorized() -> Response:
        return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")

    def kind(object_id: str) -> dict[str, str]:
        odata = "group" if object_id in state.groups else "servicePrincipal"
        return {"@odata.type": f"#microsoft.graph.{odata}", "id": object_id}

    def listing(ids: Any) -> JSONResponse:
        return JSONResponse({"value": [{**kind(i), **state.groups[i].body()} for i in ids]})

    async def group(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        with state.lock:
            found = state.groups.get(request.path_params["id"])
            if found is None:
                return graph_error(
                    404, "Request_ResourceNotFound", missing(request.path_params["id"])
                )
            return JSONResponse(found.body())

    async def members(request: Request) -> Response:
        """GET members; POST members/$ref {"@odata.id": …/directoryObjects/{id}}."""
        if not authorized(request):
            return unauthorized()
        ident = request.path_params["id"]
        body = await request.json() if request.method == "POST" else {}
        with state.lock:
            found = state.groups.get(ident)
            if found is None:
                return graph_error(404, "Request_ResourceNotFound", missing(ident))
            if request.method == "GET":
                return JSONResponse({"value": [kind(m) for m in found.members]})
            member = str(body.get("@odata.id", "")).rstrip("/").rsplit("/", 1)[-1]
            if member not in state.principals and member not in state.groups:
                return graph_error(404, "Request_ResourceNotFound", missing(member))
            if member in found.members:
                return graph_error(
                    400,
                    "Request_BadRequest",
                    "One or more added object references already exist for the following "
                    "modified properties: 'members'.",
                )
            found.members.append(member)
        return Response(status_code=204)

    async def member(request: Request) -> Response:
        """DELETE /groups/{id}/members/{member}/$ref."""
        if not authorized(request):
            return unauthorized()
        ident, who = request.path_params["id"], request.path_params["member"]
        with state.lock:
            found = state.groups.get(ident)
            if found is None or who not in found.members:
                return graph_error(404, "Request_ResourceNotFound", missing(who))
            found.members.remove(who)
        return Response(status_code=204)

    async def member_of(request: Request) -> Response:
        """GET /servicePrincipals|groups/{id}/memberOf | transitiveMemberOf."""
        if not authorized(request):
            return unauthorized()
        ident, relation = request.path_params["id"], request.path_params["relation"]
        if relation not in ("memberOf", "transitiveMemberOf"):
            return graph_error(400, "Request_BadRequest", f"Unsupported segment {relation}")
        with state.lock:
            if ident not in state.principals and ident not in state.groups:
                return graph_error(404, "Request_ResourceNotFound", missing(ident))
            if relation == "transitiveMemberOf":
                ids = sorted(state.groups_of(ident))
            else:
                ids = sorted(g.id for g in state.groups.values() if ident in g.members)
            return listing(ids)

    async def applications(request: Request) -> Response:
        """GET /applications?$filter=appId eq '…'."""
        if not authorized(request):
            return unauthorized()
        wanted = request.query_params.get("$filter", "").strip()
        match = APP_FILTER.fullmatch(wanted) if wanted else None
        if wanted and match is None:
            return graph_error(400, "Request_UnsupportedQuery", f"Unsupported query: {wanted}")
        with state.lock:
            found = [
                a.body()
                for a in state.applications.values()
                if match is None or a.app_id == match.group(1)
            ]
        return JSONResponse({"value": found})

    async def application(request: Request) -> Response:
        """GET / PATCH {"keyCredentials"} /applications/{id}."""
        if not authorized(request):
            return unauthorized()
        ident = request.path_params["id"]
        body = await request.json() if request.method == "PATCH" else {}
        with state.lock:
            found = state.applications.get(ident)
            if found is None:
                return graph_error(404, "Request_ResourceNotFound", missing(ident))
            if request.method == "GET":
                return JSONResponse(found.body())
            if set(body) - {"keyCredentials", "displayName"}:
                return graph_error(400, "Request_BadRequest", "Invalid property in the request.")
            if "keyCredentials" in body:
                kept = {str(k.get("keyId")) for k in body["keyCredentials"] or []}
                if kept - set(found.keys):
                    return graph_error(
                        400, "Request_BadRequest", "New key credentials need their key material."
                    )
                found.keys = {k: v for k, v in found.keys.items() if k in kept}
        return Response(status_code=204)

    async def application_password(request: Request) -> Response:
        """POST /applications/{id}/addPassword | removePassword."""
        if not authorized(request):
            return unauthorized()
        ident, verb = request.path_params["id"], request.path_params["verb"]
        body = await request.json()
        with state.lock:
            found = state.applications.get(ident)
            if found is None:
                return graph_error(404, "Request_ResourceNotFound", missing(ident))
            return password_action(state, verb, body, found.passwords, found.app_id)

    async def seed_group(request: Request) -> JSONResponse:
        """Sandbox only: {"displayName", "members": [object ids]} → a security group."""
        body = await request.json()
        created = Group(str(uuid.uuid4()), str(body["displayName"]), list(body.get("members", [])))
        with state.lock:
            state.groups[created.id] = created
        return JSONResponse(created.body())

    async def seed_key(request: Request) -> Response:
        """Sandbox only: a certificate credential (public part only) on an application."""
        body = await request.json()
        key_id = str(uuid.uuid4())
        key: dict[str, Any] = {
            "customKeyIdentifier": None,
            "displayName": str(body.get("displayName", "certificate")),
            "endDateTime": "2030-01-01T00:00:00Z",
            "keyId": key_id,
            "startDateTime": "2025-01-01T00:00:00Z",
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": None,
        }
        with state.lock:
            found = state.applications.get(request.path_params["id"])
            if found is None:
                return graph_error(
                    404, "Request_ResourceNotFound", missing(request.path_params["id"])
                )
            found.keys[key_id] = key
        return JSONResponse(key)

    return [
        Route(f"{GRAPH}/groups/{{id}}", group, methods=["GET"]),
        Route(f"{GRAPH}/groups/{{id}}/members", members, methods=["GET"]),
        Route(f"{GRAPH}/groups/{{id}}/members/$ref", members, methods=["POST"]),
        Route(f"{GRAPH}/groups/{{id}}/members/{{member}}/$ref", member, methods=["DELETE"]),
        Route(f"{GRAPH}/servicePrincipals/{{id}}/{{relation}}", member_of, methods=["GET"]),
        Route(f"{GRAPH}/groups/{{id}}/{{relation}}", member_of, methods=["GET"]),
        Route(f"{GRAPH}/applications", applications, methods=["GET"]),
        Route(f"{GRAPH}/applications/{{id}}", application, methods=["GET", "PATCH"]),
        Route(f"{GRAPH}/applications/{{id}}/{{verb}}", application_password, methods=["POST"]),
        Route("/_sandbox/azure/groups", seed_group, methods=["POST"]),
        Route("/_sandbox/azure/applications/{id}/keys", seed_key, methods=["POST"]),
    ]
