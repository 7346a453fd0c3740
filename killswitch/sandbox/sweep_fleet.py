"""What the zombie sweep should find in the sandbox, seeded among the healthy fleet:

- zombies: the retired `legacy-summarizer` (decommissioned, every credential still works);
- orphans: an IAM user tagged for an agent the inventory does not know, an untagged IAM
  user, an entity-less Vault token, an OpenAI key named for nobody;
- stale: `quarterly-forecaster`'s key, last used 100 days ago;
- long-lived: `nightly-indexer`'s key, created 400 days ago (used yesterday);
- expired: `hackathon-agent`, whose inventory expiry passed a month ago;
- reused: one of `support-bot`'s keys, declared by `sales-assistant` too.

Key dates are moved back inside moto by the sandbox daemon (`/_sandbox/aws/backdate`): the
sandbox-only control surface, as no real provider lets anyone rewrite history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, CredentialRef
from killswitch.sandbox import fleet, saas_fleet, vault_fleet
from killswitch.secrets import MaterialStore

ZOMBIE_AGENT = "legacy-summarizer"
STALE_AGENT = "quarterly-forecaster"
LONG_LIVED_AGENT = "nightly-indexer"
EXPIRED_AGENT = "hackathon-agent"
GHOST_AGENT = "ghost-agent"
REUSED_BY = ("support-bot", "sales-assistant")


@dataclass
class Seeded:
    """References (never secrets) of what the sweep must find, by category."""

    orphan: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    long_lived: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "zombie_agent": ZOMBIE_AGENT,
            "orphan": self.orphan,
            "stale": self.stale,
            "long-lived": self.long_lived,
            "expired": self.expired,
            "reused": self.reused,
        }


def backdate(saas_url: str, key_id: str, *, created_days: int, last_used_days: int | None) -> None:
    """Move an access key's creation and last use back in moto (sandbox only)."""
    httpx.post(
        f"{saas_url}/_sandbox/aws/backdate",
        json={
            "access_key_id": key_id,
            "created_days_ago": created_days,
            "last_used_days_ago": last_used_days,
        },
        timeout=10,
    ).raise_for_status()


def seed(
    admin: fleet.Admin,
    inventory: Inventory,
    store: MaterialStore,
    vault: vault_fleet.Vault,
    saas_url: str,
) -> Seeded:
    iam = admin.iam()
    seeded = Seeded()
    now = datetime.now(UTC)

    def agent_with_key(
        agent_id: str, owner: str, purpose: str, *, remember: bool = True, **kw: Any
    ) -> str:
        inventory.upsert_agent(Agent(agent_id, owner, AgentStatus.ACTIVE, purpose, "prod", **kw))
        user = f"{agent_id}-runtime"
        iam.create_user(UserName=user, Tags=[{"Key": fleet.TAG_KEY, "Value": agent_id}])
        iam.attach_user_policy(UserName=user, PolicyArn=fleet.policy_arn("agent-runtime"))
        minted = fleet.add_key(admin, store, user, agent_id=agent_id, remember=remember)
        key = minted["access_key_id"]
        inventory.declare(agent_id, CredentialRef("aws", "aws.access-key", key))
        return key

    # No probe material on file: a probe (another agent's containment checks the untouched
    # ones) would count as use and make the key fresh again.
    stale = agent_with_key(
        STALE_AGENT, "finance-eng", "quarterly revenue forecasts", remember=False
    )
    backdate(saas_url, stale, created_days=120, last_used_days=100)
    seeded.stale.append(stale)
    old = agent_with_key(LONG_LIVED_AGENT, "search-infra", "rebuilds the search index nightly")
    backdate(saas_url, old, created_days=400, last_used_days=1)
    seeded.long_lived.append(old)
    lapsed = agent_with_key(
        EXPIRED_AGENT, "dev-productivity", "hackathon demo bot", expires_at=now - timedelta(days=30)
    )
    seeded.expired.append(lapsed)

    orphans: list[tuple[str, Any]] = [
        ("shadow-etl-bot", [{"Key": fleet.TAG_KEY, "Value": GHOST_AGENT}]),
        ("ml-scratch-user", []),
    ]
    for user, tags in orphans:
        iam.create_user(UserName=user, Tags=tags)
        seeded.orphan.append(fleet.add_key(admin, store, user, remember=False)["access_key_id"])
    orphan_token = vault.root().auth.token.create(
        policies=["default"], no_parent=True, ttl="720h", display_name="forgotten-script"
    )
    seeded.orphan.append(str(orphan_token["auth"]["accessor"]))
    intern = saas_fleet.mint(saas_url, "openai", "intern-notebook")
    seeded.orphan.append(intern["ref"])

    shared = next(r.ref for r in inventory.declared(REUSED_BY[0]) if r.kind == "aws.access-key")
    inventory.declare(REUSED_BY[1], CredentialRef("aws", "aws.access-key", shared))
    seeded.reused.append(shared)
    return seeded


def root_accessor(vault: vault_fleet.Vault) -> str:
    """The sandbox root token's accessor: protected (reported by sweeps, never acted on)."""
    return str(vault.root().auth.token.lookup_self()["data"]["accessor"])


def write(path: Any, seeded: Seeded) -> None:
    path.write_text(json.dumps(seeded.as_dict(), indent=2))
