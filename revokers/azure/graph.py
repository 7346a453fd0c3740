"""Microsoft Graph over httpx: service principals, their application objects and the
credentials of both, and the group memberships through which a principal holds roles."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)

from killswitch.errors import NotFoundError
from killswitch.retry import retrying_call
from revokers.azure.errors import graph_error, translate


def tls(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx's `verify`: a CA bundle path becomes an SSL context (a path is deprecated)."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


class Graph:
    """`/v1.0/servicePrincipals…` with a bearer token of the kill switch's own app."""

    def __init__(
        self, base_url: str, credential: TokenCredential, verify: bool | str, timeout_s: float
    ) -> None:
        self.credential = credential
        self.scope = "https://graph.microsoft.com/.default"
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1.0", verify=tls(verify), timeout=timeout_s
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.get_token(self.scope).token}"}

    def request(self, method: str, path: str, doing: str, **kw: Any) -> httpx.Response:
        """One Graph call. A read (GET) is retried by itself on a transient answer, within
        the discovery's deadline: discovery is a chain of reads, and retrying the whole
        chain under a few tens of percent of faults rarely gets through. A write is sent
        once (the engine retries each action)."""
        if method == "GET":
            response: httpx.Response = retrying_call()(self._once, method, path, doing, **kw)
            return response
        return self._once(method, path, doing, **kw)

    def _once(self, method: str, path: str, doing: str, **kw: Any) -> httpx.Response:
        try:
            headers = self._headers()
        except (ClientAuthenticationError, ServiceRequestError, ServiceResponseError) as exc:
            raise translate(exc, doing=f"{doing}: a Graph token") from exc
        try:
            response = self.http.request(method, path, headers=headers, **kw)
        except httpx.TransportError as exc:
            raise graph_error(httpx.Response(503), f"{doing}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise graph_error(response, doing)
        return response

    def tagged(self, tag: str) -> list[dict[str, Any]]:
        """GET /servicePrincipals?$filter=tags/any(t: t eq '<tag>'), every page."""
        found: list[dict[str, Any]] = []
        path: str | None = "/servicePrincipals"
        params: dict[str, str] | None = {"$filter": f"tags/any(t:t eq '{tag}')"}
        while path:
            body = self.request(
                "GET", path, f"list service principals tagged {tag}", params=params
            ).json()
            found += body.get("value", [])
            path, params = body.get("@odata.nextLink"), None
        return found

    def principals(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        path: str | None = "/servicePrincipals"
        while path:
            body = self.request("GET", path, "list service principals").json()
            found += body.get("value", [])
            path = body.get("@odata.nextLink")
        return found

    def get(self, object_id: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.request(
                "GET", f"/servicePrincipals/{object_id}", f"get {object_id}"
            ).json()
        except NotFoundError:
            return None
        return body

    def set_enabled(self, object_id: str, enabled: bool) -> None:
        self.request(
            "PATCH",
            f"/servicePrincipals/{object_id}",
            f"PATCH {object_id} accountEnabled",
            json={"accountEnabled": enabled},
        )

    def add_password(self, object_id: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "POST",
            f"/servicePrincipals/{object_id}/addPassword",
            f"addPassword {object_id}",
            json={"passwordCredential": {"displayName": name}},
        ).json()
        return body

    def remove_password(self, object_id: str, key_id: str) -> None:
        self.request(
            "POST",
            f"/servicePrincipals/{object_id}/removePassword",
            f"removePassword {object_id}",
            json={"keyId": key_id},
        )

    def _pages(self, path: str, doing: str, params: dict[str, str] | None = None) -> list[Any]:
        found: list[Any] = []
        at: str | None = path
        while at:
            body = self.request("GET", at, doing, params=params).json()
            found += body.get("value", [])
            at, params = body.get("@odata.nextLink"), None
        return found

    def applications(self) -> list[dict[str, Any]]:
        """GET /applications, every page (the sweep)."""
        return self._pages("/applications", "list applications")

    def application(self, app_id: str) -> dict[str, Any] | None:
        """GET /applications?$filter=appId eq '<app id>': the app registration behind a
        principal (None: it lives in another tenant, or is gone)."""
        found = self._pages(
            "/applications", f"get the application {app_id}", {"$filter": f"appId eq '{app_id}'"}
        )
        return found[0] if found else None

    def application_by_id(self, object_id: str) -> dict[str, Any] | None:
        """GET /applications/{id}."""
        try:
            body: dict[str, Any] = self.request(
                "GET", f"/applications/{object_id}", f"get application {object_id}"
            ).json()
        except NotFoundError:
            return None
        return body

    def remove_application_password(self, object_id: str, key_id: str) -> None:
        """POST /applications/{id}/removePassword {"keyId"} (204)."""
        self.request(
            "POST",
            f"/applications/{object_id}/removePassword",
            f"removePassword application {object_id}",
            json={"keyId": key_id},
        )

    def set_application_keys(self, object_id: str, keys: list[dict[str, Any]]) -> None:
        """PATCH /applications/{id} {"keyCredentials": [...]}: the certificates kept (removeKey
        wants a proof of possession signed with one of the app's own private keys)."""
        self.request(
            "PATCH",
            f"/applications/{object_id}",
            f"PATCH application {object_id} keyCredentials",
            json={"keyCredentials": keys},
        )

    def member_of(self, object_id: str, transitive: bool = False) -> list[dict[str, Any]]:
        """GET /servicePrincipals/{id}/memberOf (or transitiveMemberOf): groups only."""
        relation = "transitiveMemberOf" if transitive else "memberOf"
        found = self._pages(f"/servicePrincipals/{object_id}/{relation}", f"{relation} {object_id}")
        return [g for g in found if g.get("@odata.type", "") == "#microsoft.graph.group"]

    def group_member_of(self, group_id: str) -> list[dict[str, Any]]:
        """GET /groups/{id}/transitiveMemberOf: the groups a group is nested in."""
        found = self._pages(
            f"/groups/{group_id}/transitiveMemberOf", f"transitiveMemberOf {group_id}"
        )
        return [g for g in found if g.get("@odata.type", "") == "#microsoft.graph.group"]

    def remove_member(self, group_id: str, object_id: str) -> None:
        """DELETE /groups/{id}/members/{member}/$ref (204)."""
        self.request(
            "DELETE",
            f"/groups/{group_id}/members/{object_id}/$ref",
            f"remove {object_id} from group {group_id}",
        )

    def add_member(self, group_id: str, object_id: str) -> None:
        """POST /groups/{id}/members/$ref {"@odata.id": …/directoryObjects/{member}} (204)."""
        self.request(
            "POST",
            f"/groups/{group_id}/members/$ref",
            f"add {object_id} to group {group_id}",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"},
        )

    def close(self) -> None:
        self.http.close()
