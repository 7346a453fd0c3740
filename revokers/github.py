"""GitHub revoker (httpx): personal access tokens (classic `ghp_`, fine-grained
`github_pat_`) and OAuth/App user tokens, revoked through the credential revocation API
(`POST /credentials/revoke`, unauthenticated, 202: asynchronous and irreversible) and probed
with `GET /user` until it answers 401."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from killswitch.models import Action, Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker

HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@revoker("github")
class GitHubRevoker(HttpRevoker):
    credential_kinds = ("github.token",)
    grant_kinds = ()
    stand_in = "killswitch.sandbox.github"
    operation = "revoke-token"
    reversible = False
    material_operations = frozenset({"revoke-token"})
    permissions = {
        "discover": (),
        "contain": ("POST /credentials/revoke (unauthenticated; 60 requests an hour)",),
        "detach": (),
        "probe": ("GET /user with the token itself",),
        "restore": (),
    }

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubRevoker:
        return cls(settings.github)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "note": "no identity: the revocation API must be called unauthenticated "
            "(authenticated calls get 403); it takes the token values themselves"
        }

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        tokens = self.secrets_of(action, materials, hint="delete it in the owner's settings")
        response = await self.request(
            "POST", "/credentials/revoke", headers=HEADERS, json={"credentials": tokens}
        )
        if response.status_code != 202:
            raise self.refused(response, "POST /credentials/revoke")
        return "revocation accepted (202; asynchronous, irreversible)", {}

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        token = material.get("token")
        if not token:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the token")
        response = await self.request(
            "GET", "/user", headers={**HEADERS, "Authorization": f"Bearer {token}"}
        )
        if response.status_code == 401:
            message = response.json().get("message", "")
            return ProbeAttempt(ProbeOutcome.REJECTED, f"GET /user → 401 {message}")
        if response.status_code == 200:
            return ProbeAttempt(ProbeOutcome.ACCEPTED, "GET /user with the agent's token: 200")
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"GET /user → {response.status_code}")

    async def aread_back(self, credential: Credential) -> Verdict:
        return Verdict(
            VerdictStatus.UNKNOWN,
            "no token material: GitHub offers no read-back of a token by reference",
            to_prove="put the token in a secret source to revoke and probe it",
        )
