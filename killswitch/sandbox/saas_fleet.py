"""The demo fleet's SaaS tokens: a Slack bot token, two GitHub tokens (classic and
fine-grained), an OpenAI project key and an Anthropic key per agent, minted by the
stand-ins' sandbox-only seeding endpoint and declared in the inventory by reference."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from killswitch.inventory import Inventory
from killswitch.models import CredentialRef
from killswitch.secrets import MaterialStore

MINT: tuple[dict[str, Any], ...] = (
    {"provider": "slack", "field": "token"},
    {"provider": "github", "field": "token"},
    {"provider": "github", "field": "token", "fine_grained": True},
    {"provider": "openai", "field": "api_key"},
    {"provider": "anthropic", "field": "api_key"},
)


def mint(url: str, provider: str, owner: str, **extra: Any) -> dict[str, str]:
    """A fresh credential at the stand-in: {kind, ref, secret}."""
    response = httpx.post(
        f"{url}/_sandbox/seed", json={"provider": provider, "owner": owner, **extra}, timeout=10
    )
    response.raise_for_status()
    minted: dict[str, str] = response.json()
    return minted


def seed_agent(url: str, store: MaterialStore, inventory: Inventory, agent_id: str) -> None:
    for spec in MINT:
        extra = {k: v for k, v in spec.items() if k not in ("provider", "field")}
        minted = mint(url, spec["provider"], agent_id, **extra)
        inventory.declare(agent_id, CredentialRef(spec["provider"], minted["kind"], minted["ref"]))
        store.add(
            minted["kind"], minted["ref"], {spec["field"]: minted["secret"]}, agent_id=agent_id
        )


def inject_fault(
    url: str, provider: str, status: int, *, retry_after: float | None = None, count: int = 1
) -> None:
    """Make the stand-in answer the next `count` calls for `provider` with `status`."""
    httpx.post(
        f"{url}/_sandbox/faults",
        json={"provider": provider, "status": status, "retry_after": retry_after, "count": count},
        timeout=10,
    ).raise_for_status()


def set_github_delay(url: str, seconds: float) -> None:
    httpx.post(
        f"{url}/_sandbox/settings", json={"github_revoke_delay_s": seconds}, timeout=10
    ).raise_for_status()


ONCALL = ("U0ONCALL001",)
GROUP = ("U0ONCALL002",)
USERGROUP = "S0ONCALL01"
INCIDENT_CHANNEL = "C0INCIDENTS"


def slack_app(url: str) -> dict[str, Any]:
    """The kill switch's own Slack app in the stand-in: its bot token, a signing secret, the
    on-call people (one by id, one through the on-call user group) and the incident channel."""
    bot = mint(url, "slack", "killswitch-bot")
    httpx.post(
        f"{url}/_sandbox/settings", json={"usergroups": {USERGROUP: list(GROUP)}}, timeout=10
    ).raise_for_status()
    return {
        "signing_secret": secrets.token_hex(32),
        "bot_token": bot["secret"],
        "oncall_user_ids": list(ONCALL),
        "oncall_usergroup": USERGROUP,
        "oncall_mention": f"<!subteam^{USERGROUP}>",
        "allowed_channels": [INCIDENT_CHANNEL],
    }


def reset(url: str) -> None:
    """Forget every token, fault and message (the sandbox's `up --reset`)."""
    httpx.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
