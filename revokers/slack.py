"""Slack revoker (httpx): bot and user tokens, revoked with `auth.revoke`, probed with
`auth.test`. Slack answers HTTP 200 even for a dead token: `ok:false` with `invalid_auth`,
`token_revoked` or `account_inactive` is the rejection. Revocation is irreversible and needs
the token itself (Slack has no admin call that revokes one token by reference)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from killswitch.errors import ProviderError, TransientError
from killswitch.models import Action, Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker

DEAD = frozenset(
    {"invalid_auth", "token_revoked", "account_inactive", "token_expired", "not_authed"}
)


@revoker("slack")
class SlackRevoker(HttpRevoker):
    credential_kinds = ("slack.bot-token", "slack.user-token")
    grant_kinds = ()
    stand_in = "killswitch.sandbox.slack"
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
    def from_settings(cls, settings: Settings) -> SlackRevoker:
        return cls(settings.slack)

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
            elif body.get("ok") is False and body.get("error") in DEAD:
                continue  # dead already
            elif not body.get("ok"):
                raise ProviderError(
                    f"auth.revoke: {body.get('error')}",
                    provider="slack",
                    provider_code=str(body.get("error")),
                )
        if not revoked:
            return "token was dead already", None
        return "auth.revoke: revoked (irreversible)", {}

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        token = material.get("token")
        if not token:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the token")
        body = await self._call("auth.test", token)
        if body.get("ok"):
            return ProbeAttempt(ProbeOutcome.ACCEPTED, "auth.test with the agent's token: ok")
        error = str(body.get("error"))
        outcome = ProbeOutcome.REJECTED if error in DEAD else ProbeOutcome.INCONCLUSIVE
        return ProbeAttempt(outcome, f"auth.test → ok:false, error: {error}")

    async def aread_back(self, credential: Credential) -> Verdict:
        return Verdict(
            VerdictStatus.UNKNOWN,
            "no token material: Slack offers no read-back of a token by reference",
            to_prove="put the token in a secret source; or uninstall the app",
        )
