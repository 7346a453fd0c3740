"""Acme's revoker: discover the agent's tokens, revoke (reversibly), probe, restore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Outcome,
    UndoRecord,
    Verb,
    Verdict,
    VerdictStatus,
)
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import Discovery, ProbeAttempt, ProbeOutcome, Revoker, revoker
from tests.revokers.acme import AcmeSettings, stand_in

# Acme's answers that mean a dead token; any other is inconclusive.
DEAD = frozenset({"401 token_revoked"})


def classify(answer: str) -> ProbeAttempt:
    """One answer of Acme's API, against its allow-list."""
    if answer == "200 ok":
        return ProbeAttempt(ProbeOutcome.ACCEPTED, answer)
    if answer in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, answer)
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, answer)


@revoker("acme")
class AcmeRevoker(Revoker):
    credential_kinds = ("acme.token",)
    grant_kinds = ()
    permissions = {
        "discover": ("tokens:read",),
        "contain": ("tokens:write",),
        "detach": (),
        "probe": ("the token itself",),
        "restore": ("tokens:write",),
    }

    def __init__(self, config: AcmeSettings) -> None:
        self.config = config
        self.settle_s = config.settle_s

    @classmethod
    def from_settings(cls, settings: Settings) -> AcmeRevoker:
        return cls(settings.section("acme", AcmeSettings))

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {"scopes": ["tokens:read", "tokens:write"]}

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        with stand_in.LOCK:
            mine = {i: dict(t) for i, t in stand_in.TOKENS.items() if t["agent"] == agent.id}
        skipped = tuple(
            f"acme.token {i}" for i in sorted(mine) if i in self.config.protected_tokens
        )
        credentials = tuple(
            Credential("acme", "acme.token", i, agent.id, agent.id, t["status"])
            for i, t in sorted(mine.items())
            if i not in self.config.protected_tokens
        )
        actions = tuple(
            Action(
                "acme",
                Verb.CONTAIN,
                "revoke-token",
                c.principal,
                c.ref,
                reversible=True,
                in_place=c.state == "revoked",
            )
            for c in credentials
        )
        return Discovery(credentials, (), actions, protected_skipped=skipped)

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        before = stand_in.revoke(action.target)
        if before == "revoked":
            return ActionResult(action, Outcome.ALREADY, "revoked already")
        return ActionResult(action, Outcome.DONE, "revoked", {"status": before})

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        return classify(stand_in.authenticate(material.get("secret") or ""))

    def alternative_probe(self, credential: Credential, material: Material) -> ProbeAttempt | None:
        if not self.config.whoami:
            return None
        return classify(stand_in.authenticate(material.get("secret") or "", "whoami"))

    def read_back(self, credential: Credential) -> Verdict:
        with stand_in.LOCK:
            status = stand_in.TOKENS[credential.ref]["status"]
        if status == "revoked":
            return Verdict(VerdictStatus.UNVERIFIED, "read back: revoked")
        return Verdict(VerdictStatus.UNKNOWN, f"read back: {status}")

    def restore(self, record: UndoRecord) -> ActionResult:
        stand_in.set_status(record.action.target, str(record.data["status"]))
        return ActionResult(record.action, Outcome.DONE, "re-activated")
