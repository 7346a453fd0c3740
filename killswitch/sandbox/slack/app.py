"""The kill switch's own Slack app in the stand-in (its bot token, a signing secret, the
on-call people — one by id, one through the on-call user group — and the incident channel),
and the Slack plug-in's seeding: a bot token per agent."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from killswitch.sandbox.http import mint
from killswitch.sandbox.minting import Minted
from killswitch.sandbox.plugin import AgentSpec, Seeded, SweepSeeds

ONCALL = ("U0ONCALL001",)
GROUP = ("U0ONCALL002",)
USERGROUP = "S0ONCALL01"
INCIDENT_CHANNEL = "C0INCIDENTS"


def slack_app(url: str) -> dict[str, Any]:
    """Mint the app's bot token and set up the on-call user group (`url`: the shared app)."""
    bot = mint(url, "slack", "killswitch-bot")
    httpx.post(
        f"{url}/_sandbox/slack/usergroups", json={USERGROUP: list(GROUP)}, timeout=10
    ).raise_for_status()
    return {
        "signing_secret": secrets.token_hex(32),
        "bot_token": bot["secret"],
        "oncall_user_ids": list(ONCALL),
        "oncall_usergroup": USERGROUP,
        "oncall_mention": f"<!subteam^{USERGROUP}>",
        "allowed_channels": [INCIDENT_CHANNEL],
    }


@dataclass(frozen=True, slots=True)
class Seeder:
    """Agents' tokens as every provider of the shared app mints them, plus the app itself."""

    tokens: Minted
    app: Mapping[str, Any]

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """A bot token (no options)."""
        return self.tokens.seed_agent(spec, options)

    def seed_sweep(self) -> SweepSeeds:
        """Nothing."""
        return self.tokens.seed_sweep()

    def profile(self) -> Mapping[str, Any]:
        """`slack` (the revoker's API root) and `slack_app` (the app's own, and its API root)."""
        return {
            **self.tokens.profile(),
            "slack_app": {**self.app, "api_url": self.tokens.base_url},
        }

    def status(self) -> Mapping[str, Any]:
        """`providers.slack`: what scripts and tests need to act as Slack and as the on-call
        engineers; `providers.slack_app`: the app's settings."""
        return {
            "slack": {
                **self.tokens.status()["slack"],
                "signing_secret": self.app["signing_secret"],
                "oncall_user_ids": [*self.app["oncall_user_ids"], *GROUP],
                "channel": INCIDENT_CHANNEL,
            },
            "slack_app": {**self.app, "api_url": self.tokens.base_url},
        }
