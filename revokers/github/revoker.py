"""GitHub revoker (httpx): personal access tokens (classic `ghp_`, fine-grained
`github_pat_`) and OAuth/App user tokens, revoked through the credential revocation API
(`POST /credentials/revoke`, unauthenticated, 202: asynchronous and irreversible) and probed
with `GET /user` until it answers 401 (a 403 — a rate limit, an SSO or IP-allowlist
refusal — says nothing about the token). Installation tokens (`ghs_`) are not taken by that
API: each is revoked with `DELETE /installation/token`, authenticated with itself (204), and
probed with `GET /installation/repositories` (an installation token cannot call /user).

The revocation API takes up to 1,000 tokens a call and allows 60 unauthenticated calls an
hour per IP: the revocations performed together are sent together (`Batch`), and a 403/429
with `x-ratelimit-remaining: 0` is throttling (retried until `x-ratelimit-reset` when that
falls inside the action deadline), never the kill switch's own identity failing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from killswitch.errors import TransientError
from killswitch.models import Action, ActionResult, Credential, Outcome, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.github.batch import Batch
from revokers.http import HttpRevoker, retry_after

HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# HTTP statuses of GET /user that mean the token is dead; any other answer is inconclusive.
DEAD: frozenset[int] = frozenset({401})
INSTALLATION = "ghs_"
RATE_LIMITED = "rate limited"


def classify(
    status: int, headers: Mapping[str, str], body: Any, call: str = "GET /user"
) -> ProbeAttempt:
    """A probe's answer: 200 authenticates, 401 rejects, anything else says nothing."""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    if status == 200:
        return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{call} with the agent's token: 200")
    if status in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"{call} → {status} {message}", str(status))
    why = "rate limited, says nothing about the token" if limited(status, headers, body) else ""
    said = f"{call} → {status}" + (f" ({why or message[:120]})" if why or message else "")
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said, str(status))


def limited(status: int, headers: Mapping[str, str], body: Any) -> bool:
    """GitHub's rate-limit answer: 403 or 429 with no requests left (or saying so)."""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    return status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@revoker("github")
class GitHubRevoker(HttpRevoker):
    credential_kinds = ("github.token",)
    grant_kinds = ()
    operation = "revoke-token"
    batched_operations = frozenset({"revoke-token"})  # POST /credentials/revoke: 1,000 a call
    reversible = False
    material_operations = frozenset({"revoke-token"})
    permissions = {
        "discover": (),
        "contain": (
            "POST /credentials/revoke (unauthenticated; 60 requests an hour, 1,000 tokens each)",
            "DELETE /installation/token with the installation token itself",
        ),
        "detach": (),
        "probe": (
            "GET /user with the token itself",
            "GET /installation/repositories with an installation token itself",
        ),
        "restore": (),
    }

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "note": "no identity: the revocation API must be called unauthenticated "
            "(authenticated calls get 403); it takes the token values themselves"
        }

    _pending: Batch | None = None

    def _batch(self) -> Batch:
        """The revocations waiting to be sent together (created on the revoker's loop)."""
        if self._pending is None:
            self._pending = Batch(self._revoke)
        return self._pending

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """As HttpRevoker's; a 403 that is GitHub's rate limit is throttling too."""
        response = await super().request(method, path, **kwargs)
        if response.status_code == 403 and limited(403, response.headers, _json(response)):
            wait = retry_after(response)
            resets = f"; resets in {wait:.0f}s" if wait is not None else ""
            raise TransientError(
                f"{method} {path}: HTTP 403, {RATE_LIMITED} (x-ratelimit-remaining: 0{resets})",
                provider=self.provider,
                provider_code="rate-limited",
                retry_after=wait,
            )
        return response

    async def _revoke(self, tokens: Sequence[str]) -> None:
        """One `POST /credentials/revoke` of at most 1,000 tokens."""
        response = await self.request(
            "POST", "/credentials/revoke", headers=HEADERS, json={"credentials": list(tokens)}
        )
        if response.status_code != 202:
            raise self.refused(response, f"POST /credentials/revoke ({len(tokens)} tokens)")

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        tokens = self.secrets_of(action, materials, hint="delete it in the owner's settings")
        done = []
        installation = [t for t in tokens if t.startswith(INSTALLATION)]
        for token in installation:
            done.append(await self._revoke_installation(token))
        listed = [t for t in tokens if not t.startswith(INSTALLATION)]
        if listed:
            calls = await self._batch().submit(listed)
            done.append(
                f"revocation accepted (202; asynchronous, irreversible) in a "
                f"POST /credentials/revoke of {calls} token(s)"
            )
        return "; ".join(done), {}

    async def _revoke_installation(self, token: str) -> str:
        """`DELETE /installation/token` with the token itself: 204, or 401 when dead already."""
        response = await self.request(
            "DELETE", "/installation/token", headers={**HEADERS, "Authorization": f"Bearer {token}"}
        )
        if response.status_code == 204:
            return "installation token revoked (DELETE /installation/token: 204; irreversible)"
        if response.status_code == 401:
            return "installation token dead already (DELETE /installation/token: 401)"
        raise self.refused(response, "DELETE /installation/token")

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        token = material.get("token")
        if not token:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the token")
        call = "/installation/repositories" if token.startswith(INSTALLATION) else "/user"
        response = await self.request(
            "GET", call, headers={**HEADERS, "Authorization": f"Bearer {token}"}
        )
        return classify(response.status_code, response.headers, _json(response), f"GET {call}")

    def admit(
        self, credential: Credential, attempt: ProbeAttempt, results: Sequence[ActionResult]
    ) -> ProbeAttempt:
        """A token still accepted after a rate-limited revocation says so."""
        throttled = [
            r.detail for r in results if r.outcome is Outcome.FAILED and RATE_LIMITED in r.detail
        ]
        if attempt.outcome is not ProbeOutcome.ACCEPTED or not throttled:
            return attempt
        return ProbeAttempt(
            attempt.outcome,
            f"{attempt.evidence}; the revocation was {RATE_LIMITED} by GitHub and did not "
            f"go through within the action deadline ({throttled[0]})",
            attempt.code,
        )

    async def aread_back(self, credential: Credential) -> Verdict:
        return Verdict(
            VerdictStatus.UNKNOWN,
            "no token material: GitHub offers no read-back of a token by reference",
            to_prove="put the token in a secret source to revoke and probe it",
        )
