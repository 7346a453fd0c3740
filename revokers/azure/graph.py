"""Microsoft Graph over httpx: service principals and their password credentials."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from azure.core.credentials import TokenCredential

from killswitch.errors import NotFoundError
from revokers.azure.errors import graph_error


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
        try:
            response = self.http.request(method, path, headers=self._headers(), **kw)
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

    def close(self) -> None:
        self.http.close()
