"""OpenAI revoker (httpx): project API keys, deleted with the organisation admin key
(`DELETE /organization/projects/{project}/api_keys/{key}` — irreversible: OpenAI has no
disable) and probed with the key itself against `GET /models` until it answers 401.
Credential refs are `<project id>/<key id>`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from killswitch.models import Action, Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker


@revoker("openai")
class OpenAIRevoker(HttpRevoker):
    credential_kinds = ("openai.api-key",)
    grant_kinds = ()
    stand_in = "saas"
    operation = "delete-project-key"
    reversible = False
    permissions = {
        "discover": (),
        "contain": ("admin key: api.management.write (DELETE project api_keys)",),
        "detach": (),
        "probe": ("GET /models with the key itself", "admin key: api.management.read (read-back)"),
        "restore": (),
    }

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIRevoker:
        return cls(settings.openai)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "admin_key": "an organisation admin key (sk-admin-…) allowed to manage project API keys"
        }

    @staticmethod
    def _path(ref: str) -> str:
        project, _, key = ref.partition("/")
        return f"/organization/projects/{project}/api_keys/{key}"

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        path = self._path(action.target)
        response = await self.request("DELETE", path, headers=self.admin_headers())
        if response.status_code == 404:
            return "key deleted already", None
        if response.status_code != 200 or not response.json().get("deleted"):
            raise self.refused(response, f"DELETE {path}")
        return "project key deleted (irreversible)", {}

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        key = material.get("api_key")
        if not key:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the api_key")
        response = await self.request("GET", "/models", headers={"Authorization": f"Bearer {key}"})
        if response.status_code == 401:
            code = response.json().get("error", {}).get("code")
            return ProbeAttempt(ProbeOutcome.REJECTED, f"GET /models → 401 {code}")
        if response.status_code == 200:
            return ProbeAttempt(ProbeOutcome.ACCEPTED, "GET /models with the agent's key: 200")
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"GET /models → {response.status_code}")

    async def aread_back(self, credential: Credential) -> Verdict:
        path = self._path(credential.ref)
        response = await self.request("GET", path, headers=self.admin_headers())
        to_prove = "put the key in a secret source to probe it"
        if response.status_code == 404:
            return Verdict(
                VerdictStatus.UNVERIFIED,
                f"read back: GET {path} → 404 (deleted)",
                to_prove=to_prove,
            )
        return Verdict(
            VerdictStatus.UNKNOWN,
            f"read back: GET {path} → {response.status_code} (still listed)",
            to_prove=to_prove,
        )
