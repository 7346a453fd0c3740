"""GitHub revoker (httpx): personal access tokens (classic `ghp_`, fine-grained
`github_pat_`) and OAuth/App user tokens, revoked through the credential revocation API
(`POST /credentials/revoke`, unauthenticated, 202: asynchronous and irreversible) and probed
with `GET /user` until it answers 401 (a 403 — a rate limit, an SSO or IP-allowlist
refusal — says nothing about the token)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from killswitch.models import Action, Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker

HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# HTTP statuses of GET /user that mean the token is dead; any other answer is inconclusive.
DEAD: frozenset[int] = frozenset({401})


def classify(status: int, headers: Mapping[str, str], body: Any) -> ProbeAttempt:
    """A GET /user answer: 200 authenticates, 401 rejects, anything else says nothing."""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    if status == 200:
        return ProbeAttempt(ProbeOutcome.ACCEPTED, "GET /user with the agent's token: 200")
    if status in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"GET /user → {status} {message}", str(status))
    limited = status == 403 and (
        headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    )
    why = "rate limited, says nothing about the token" if limited else message[:120]
    said = f"GET /user → {status}" + (f" ({why})" if why else "")
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said, str(status))


@revoker("github")
class GitHubRevoker(HttpRevoker):
    credential_kinds = ("github.token",)
    grant_kinds = ()
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
        try:
            body = response.json()
        except ValueError:
            body = None
        return classify(response.status_code, response.headers, body)

    async def aread_back(self, credential: Credential) -> Verdict:
        return Verdict(
            VerdictStatus.UNKNOWN,
            "no token material: GitHub offers no read-back of a token by reference",
            to_prove="put the token in a secret source to revoke and probe it",
        )
