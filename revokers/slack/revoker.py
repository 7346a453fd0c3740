"""Slack revoker (httpx): bot and user tokens, revoked with `auth.revoke`, probed with
`auth.test`. Slack answers HTTP 200 even for a dead token: `ok:false` with an error on the
allow-list below is the rejection. `invalid_auth` also answers a request from an IP outside
the workspace's allowlist, so it counts only when this run's `auth.revoke` of the token went
through. Revocation is irreversible and needs the token itself (Slack has no admin call
that revokes one token by reference)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from killswitch.errors import ProviderError, TransientError
from killswitch.models import Action, ActionResult, Credential, Outcome, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker


class Counts(Enum):
    """When an allow-listed auth.test error counts as a dead token."""

    ALWAYS = "always"
    AFTER_REVOKE = "after this run's auth.revoke of the token went through"


# The auth.test errors that mean a dead token, and when; any other error is inconclusive.
DEAD: Mapping[str, Counts] = {
    "token_revoked": Counts.ALWAYS,
    "account_inactive": Counts.ALWAYS,
    "invalid_auth": Counts.AFTER_REVOKE,
}
# What auth.revoke may answer for a token that is dead already (Slack docs, auth.revoke).
GONE = frozenset({"token_revoked", "account_inactive", "token_expired"})


def classify(body: Mapping[str, Any]) -> ProbeAttempt:
    """An auth.test answer: `ok` authenticates; an allow-listed error rejects; else nothing."""
    if body.get("ok"):
        return ProbeAttempt(ProbeOutcome.ACCEPTED, "auth.test with the agent's token: ok")
    error = str(body.get("error"))
    outcome = ProbeOutcome.REJECTED if error in DEAD else ProbeOutcome.INCONCLUSIVE
    return ProbeAttempt(outcome, f"auth.test → ok:false, error: {error}", error)


def admit(
    credential: Credential, attempt: ProbeAttempt, results: Sequence[ActionResult]
) -> ProbeAttempt:
    """A rejection that counts only after a revoke (`invalid_auth`) needs this run's
    auth.revoke of the token to have revoked it or found it dead already."""
    if attempt.outcome is not ProbeOutcome.REJECTED or DEAD[attempt.code] is Counts.ALWAYS:
        return attempt
    revoked = any(
        r.action.operation == "revoke-token"
        and r.action.target == credential.ref
        and r.outcome in (Outcome.DONE, Outcome.ALREADY)
        for r in results
    )
    if revoked:
        return attempt
    return ProbeAttempt(
        ProbeOutcome.INCONCLUSIVE,
        f"{attempt.evidence}, but auth.revoke did not go through for this token: "
        "invalid_auth also answers a request from an IP outside the workspace's allowlist",
        attempt.code,
    )


@revoker("slack")
class SlackRevoker(HttpRevoker):
    credential_kinds = ("slack.bot-token", "slack.user-token")
    grant_kinds = ()
    operation = "revoke-token"
    reversible = False
    material_operations = frozenset({"revoke-token"})
    permissions = {
        "discover": (),
        "contain": ("auth.revoke with the token itself",),
        "detach": (),
        "probe": ("auth.test with the token itself",),
        "restore": (),
    }

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "note": "no admin scope: auth.revoke and auth.test are called with the "
            "agent's own token; for tokens you cannot hold, uninstall the app "
            "(apps.uninstall) or use admin.apps.* on Enterprise Grid"
        }

    async def _call(self, method: str, token: str, **form: str) -> dict[str, Any]:
        response = await self.request(
            "POST", method, data=form, headers={"Authorization": f"Bearer {token}"}
        )
        body: dict[str, Any] = response.json()
        if body.get("error") == "ratelimited":
            raise TransientError(
                f"{method}: ratelimited", provider="slack", provider_code="ratelimited"
            )
        return body

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        tokens = self.secrets_of(
            action, materials, hint="uninstall the app or revoke it in the Slack admin"
        )
        revoked = 0
        for token in tokens:
            body = await self._call("auth.revoke", token)
            if body.get("ok") and body.get("revoked"):
                revoked += 1
            elif body.get("ok") is False and body.get("error") in GONE:
                continue  # dead already
            elif not body.get("ok"):
                error = str(body.get("error"))
                why = ""
                if error == "invalid_auth":
                    why = (
                        " (a token Slack does not know, or a call from an IP address outside "
                        "the token's allowlist: nothing was revoked — revoke it from an "
                        "allowlisted address, or uninstall the app in the Slack admin)"
                    )
                raise ProviderError(
                    f"auth.revoke: {error}{why}", provider="slack", provider_code=error
                )
        if not revoked:
            return "token was dead already", None
        return "auth.revoke: revoked (irreversible)", {}

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        token = material.get("token")
        if not token:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the token")
        return classify(await self._call("auth.test", token))

    def admit(
        self, credential: Credential, attempt: ProbeAttempt, results: Sequence[ActionResult]
    ) -> ProbeAttempt:
        return admit(credential, attempt, results)

    async def aread_back(self, credential: Credential) -> Verdict:
        return Verdict(
            VerdictStatus.UNKNOWN,
            "no token material: Slack offers no read-back of a token by reference",
            to_prove="put the token in a secret source; or uninstall the app",
        )
