"""The demo fleet: which agents exist, and seeding them through every plug-in.

Each plug-in seeds its provider's part of an agent with the real SDK clients against its
stand-in; the agents' secrets go to the material stores (probe material), never to stdout
or logs. What each seeded is kept per agent and provider (`sandbox status --json`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from killswitch.models import Agent, AgentStatus
from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, Seeder

DEMO_AGENT = "research-agent-7"
BREAKGLASS = "breakglass"  # protected: its credentials are the kill switch's way back in

FLEET: tuple[AgentSpec, ...] = (
    AgentSpec(DEMO_AGENT, "ml-research", "literature search and summaries"),
    AgentSpec("support-bot", "customer-support", "answers support tickets"),
    AgentSpec("billing-reconciler", "finance-eng", "reconciles invoices nightly"),
    AgentSpec("code-review-agent", "dev-productivity", "reviews pull requests"),
    AgentSpec("sales-assistant", "revops", "drafts CRM follow-ups"),
    AgentSpec(
        "legacy-summarizer",
        "ml-research",
        "retired summariser (its keys were never removed)",
        status=AgentStatus.DECOMMISSIONED,
    ),
)
ZOMBIE_AGENT = "legacy-summarizer"  # what the sweep must retire: every credential still works

PerProvider = dict[str, Seeded]


def seed_agent(sandbox: Sandbox, seeders: Mapping[str, Seeder], spec: AgentSpec) -> PerProvider:
    """One agent in the inventory and at every provider it does not skip."""
    sandbox.inventory.upsert_agent(
        Agent(spec.id, spec.owner, spec.status, spec.purpose, spec.environment)
    )
    unknown = set(spec.options) - set(seeders)
    if unknown:
        raise TypeError(f"seeding options for unknown providers: {sorted(unknown)}")
    return {
        name: seeder.seed_agent(spec, spec.options.get(name, {}))
        for name, seeder in seeders.items()
        if name not in spec.skip
    }


def seed(
    sandbox: Sandbox, seeders: Mapping[str, Seeder], fleet: Sequence[AgentSpec] = FLEET
) -> dict[str, PerProvider]:
    """The whole demo fleet, plus the protected break-glass agent; agent id -> seeded."""
    sandbox.inventory.upsert_agent(
        Agent(
            BREAKGLASS,
            "platform-security",
            AgentStatus.ACTIVE,
            "break-glass administrator (protected)",
        )
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        seeded = list(pool.map(lambda spec: seed_agent(sandbox, seeders, spec), fleet))
    return {spec.id: done for spec, done in zip(fleet, seeded, strict=True)}
