"""Anthropic revoker (httpx): API keys set `inactive` with the Admin API
(`POST /organizations/api_keys/{id}` — reversible: `active` again on restore) and probed
with the key itself against `GET /models`: only 401 `authentication_error` is dead; a 404
is a wrong URL, never a dead key, and anything else says nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from killswitch.errors import ProviderError
from killswitch.models import (
    Action,
    ActionResult,
    Credential,
    Nhi,
    Outcome,
    Verdict,
    VerdictStatus,
)
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker

VERSION = "2023-06-01"
# (HTTP status, error.type) answers to GET /models that mean the key is dead; any other
# answer is inconclusive.
DEAD: frozenset[tuple[int, str]] = frozenset({(401, "authentication_error")})


def classify(status: int, body: Any) -> ProbeAttempt:
    """A GET /models answer: 200 authenticates, an allow-listed error rejects, else nothing."""
    said = f"GET /models → {status}"
    if status == 200:
        return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{said} with the agent's key")
    error = body.get("error") if isinstance(body, dict) else None
    kind = str(error.get("type") or "") if isinstance(error, dict) else ""
    if (status, kind) in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} {kind}", kind)
    why = "a wrong URL, not a dead key" if status == 404 else "says nothing about the key"
    said = f"{said} {kind}" if kind else said
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{said} ({why})", kind)


def _kind(response: httpx.Response) -> str:
    """The `error.type` of an Anthropic error answer ('' when it is not one)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error.get("type") or "") if isinstance(error, dict) else ""


@revoker("anthropic")
class AnthropicRevoker(HttpRevoker):
    credential_kinds = ("anthropic.api-key",)
    grant_kinds = ()
    operation = "deactivate-key"
    reversible = True
    enumerable = True
    permissions = {
        "discover": ("admin key: GET /organizations/api_keys (sweep)",),
        "contain": ("admin key: POST /organizations/api_keys/{id} status=inactive",),
        "detach": (),
        "probe": ("GET /models with the key itself", "admin key: GET /organizations/api_keys"),
        "restore": ("admin key: POST /organizations/api_keys/{id} status=active",),
    }

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {"admin_key": "an Admin API key (sk-ant-admin…) of the organisation"}

    def admin_headers(self) -> dict[str, str]:
        bearer = super().admin_headers()["Authorization"].removeprefix("Bearer ")
        return {"x-api-key": bearer, "anthropic-version": VERSION}

    def enumerate(self) -> Iterator[Nhi]:
        """GET /organizations/api_keys (active and inactive), page by page. A key names its
        agent by its name; Anthropic does not say when a key was last used."""
        for status in ("active", "inactive"):
            for key in self.pages("/organizations/api_keys", cursor="after_id", status=status):
                created = key.get("created_at")
                yield Nhi(
                    provider="anthropic",
                    kind="anthropic.api-key",
                    ref=str(key["id"]),
                    principal=f"anthropic:{key.get('workspace_id') or 'default'}",
                    agent_tag=str(key.get("name") or "").split("/", 1)[0],
                    works=status == "active",
                    created_at=datetime.fromisoformat(created.replace("Z", "+00:00"))
                    if created
                    else None,
                    expires_at=datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
                    if key.get("expires_at")
                    else None,
                    detail=f"key {status}",
                )

    async def _set_status(self, key_id: str, status: str) -> httpx.Response:
        path = f"/organizations/api_keys/{key_id}"
        response = await self.request(
            "POST", path, headers=self.admin_headers(), json={"status": status}
        )
        if response.status_code != 200:
            raise self.refused(response, f"POST {path}")
        return response

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        path = f"/organizations/api_keys/{action.target}"
        current = await self.request("GET", path, headers=self.admin_headers())
        if current.status_code == 404:
            # Anthropic archives keys, it never deletes them: a 404 is a key this
            # organisation does not hold, or a wrong base URL or path — never "gone already".
            raise ProviderError(
                f"GET {path}: HTTP 404 {_kind(current) or ''}: no such key in this organisation, "
                f"or a wrong anthropic.base_url ({self.config.base_url})",
                provider="anthropic",
                provider_code="404",
            )
        if current.status_code != 200:
            raise self.refused(current, f"GET {path}")
        if current.json().get("status") != "active":
            return f"key {current.json().get('status')} already", None
        await self._set_status(action.target, "inactive")
        return "key set inactive (reversible)", {}

    async def arestore(self, action: Action, data: Mapping[str, Any]) -> ActionResult:
        await self._set_status(action.target, "active")
        return ActionResult(action, Outcome.DONE, "key set active")

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        key = material.get("api_key")
        if not key:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the api_key")
        response = await self.request(
            "GET", "/models", headers={"x-api-key": key, "anthropic-version": VERSION}
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        return classify(response.status_code, body)

    async def aread_back(self, credential: Credential) -> Verdict:
        path = f"/organizations/api_keys/{credential.ref}"
        response = await self.request("GET", path, headers=self.admin_headers())
        status = response.json().get("status") if response.status_code == 200 else None
        to_prove = "put the key in a secret source to probe it"
        if status in ("inactive", "archived"):
            return Verdict(VerdictStatus.UNVERIFIED, f"read back: key {status}", to_prove=to_prove)
        return Verdict(
            VerdictStatus.UNKNOWN,
            f"read back: GET {path} → {response.status_code}, status {status}",
            to_prove=to_prove,
        )
