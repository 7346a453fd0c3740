"""What the zombie sweep should find in moto, seeded among the healthy fleet:

- orphans: an IAM user tagged for an agent the inventory does not know, an untagged one;
- stale: `quarterly-forecaster`'s key, last used 100 days ago;
- long-lived: `nightly-indexer`'s key, created 400 days ago (used yesterday);
- expired: `hackathon-agent`, whose inventory expiry passed a month ago;
- reused: one of `support-bot`'s keys, declared by `sales-assistant` too.

Key dates are moved back inside moto by the sandbox daemon (`/_sandbox/aws/backdate` on the
shared HTTP app): the sandbox-only control surface, as no real provider lets anyone rewrite
history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, CredentialRef
from killswitch.sandbox.aws import fleet
from killswitch.sandbox.plugin import Seeded, SweepSeeds
from killswitch.secrets import MaterialStore

STALE_AGENT = "quarterly-forecaster"
LONG_LIVED_AGENT = "nightly-indexer"
EXPIRED_AGENT = "hackathon-agent"
GHOST_AGENT = "ghost-agent"
REUSED_BY = ("support-bot", "sales-assistant")
ONE_KEY = Seeded(credentials=1, grants=1)  # an agent's one user: its key, its attached policy


def backdate(http_url: str, key_id: str, *, created_days: int, last_used_days: int | None) -> None:
    """Move an access key's creation and last use back in moto (sandbox only)."""
    httpx.post(
        f"{http_url}/_sandbox/aws/backdate",
        json={
            "access_key_id": key_id,
            "created_days_ago": created_days,
            "last_used_days_ago": last_used_days,
        },
        timeout=10,
    ).raise_for_status()


async def backdate_route(request: Request) -> JSONResponse:
    """{"access_key_id", "created_days_ago", "last_used_days_ago"}: rewrite an access key's
    history inside moto, which runs in the daemon's process (sandbox only)."""
    body = await request.json()
    try:
        moved = _backdate_key(
            str(body["access_key_id"]),
            int(body["created_days_ago"]),
            body.get("last_used_days_ago"),
        )
    except KeyError as exc:
        return JSONResponse({"error": f"no such key {exc}"}, status_code=404)
    return JSONResponse(moved)


def _backdate_key(key_id: str, created_days: int, used_days: int | None) -> dict[str, str]:
    from moto.core.utils import utcnow
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    for _, account in list(iam_backends.items()):
        backend = account["aws"]
        key = backend.access_keys.get(key_id)
        if key is None:
            continue
        key.create_date = utcnow() - timedelta(days=created_days)
        if used_days is not None:
            key.last_used = AccessKeyLastUsed(
                timestamp=utcnow() - timedelta(days=int(used_days)),
                service="iam",
                region=fleet.REGION,
            )
        return {"access_key_id": key_id, "create_date": key.create_date.isoformat()}
    raise KeyError(key_id)


def seed(
    admin: fleet.Admin, inventory: Inventory, store: MaterialStore, http_url: str
) -> SweepSeeds:
    """The keys above, after the demo fleet (the reused key is one of `support-bot`'s)."""
    iam = admin.iam()
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
    backdate(http_url, stale, created_days=120, last_used_days=100)
    old = agent_with_key(LONG_LIVED_AGENT, "search-infra", "rebuilds the search index nightly")
    backdate(http_url, old, created_days=400, last_used_days=1)
    lapsed = agent_with_key(
        EXPIRED_AGENT, "dev-productivity", "hackathon demo bot", expires_at=now - timedelta(days=30)
    )
    orphans: list[str] = []
    untagged: list[tuple[str, Any]] = [
        ("shadow-etl-bot", [{"Key": fleet.TAG_KEY, "Value": GHOST_AGENT}]),
        ("ml-scratch-user", []),
    ]
    for user, tags in untagged:
        iam.create_user(UserName=user, Tags=tags)
        orphans.append(fleet.add_key(admin, store, user, remember=False)["access_key_id"])
    shared = next(r.ref for r in inventory.declared(REUSED_BY[0]) if r.kind == "aws.access-key")
    inventory.declare(REUSED_BY[1], CredentialRef("aws", "aws.access-key", shared))
    return SweepSeeds(
        orphan=tuple(orphans),
        stale=(stale,),
        long_lived=(old,),
        expired=(lapsed,),
        reused=(shared,),
        agents={
            STALE_AGENT: ONE_KEY,
            LONG_LIVED_AGENT: ONE_KEY,
            EXPIRED_AGENT: ONE_KEY,
            REUSED_BY[1]: Seeded(credentials=1),
        },
    )
