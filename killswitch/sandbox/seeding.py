"""Seeding a running sandbox through its plug-ins: the demo fleet, what the sweep must find,
the kill switch's profile, and what `sandbox status` says of each provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from killswitch import progress
from killswitch.alerts import fingerprints
from killswitch.alerts.settings import fresh_secrets
from killswitch.inventory import Inventory
from killswitch.ledger_key import key_for
from killswitch.plans import Plans
from killswitch.sandbox import fleet
from killswitch.sandbox.plugin import Sandbox, Seeder, SweepSeeds
from killswitch.sandbox.plugins import loaded
from killswitch.sandbox.processes import write_private
from killswitch.sandbox.state import Paths
from killswitch.secrets import KeyringFile, MaterialStore, Stores, identifier_fields
from killswitch.settings import DEFAULT_PROTECTED_AGENTS
from killswitch.sightings import Sightings


@dataclass(frozen=True, slots=True)
class Seeding:
    """A sandbox with every plug-in's seeder, and the secret sources it writes to."""

    sandbox: Sandbox
    seeders: Mapping[str, Seeder]
    secret_sources: tuple[str, ...]


def _sandbox(
    stand_ins: Mapping[str, Any],
    inventory: Inventory,
    keyring: KeyringFile,
    paths: Paths,
    *,
    fresh: bool = False,
) -> tuple[Sandbox, tuple[str, ...]]:
    stores: dict[str, MaterialStore] = {}
    for plugin in loaded().values():
        stores.update(plugin.material(stand_ins))
    # Every secret seeded is fingerprinted, so a leaked value in an alert finds its agent.
    key = key_for(paths.ledger, None, fingerprints.PURPOSE)
    known = fingerprints.Fingerprints(inventory, key, identifier_fields())
    if fresh:
        known.clear()
    sandbox = Sandbox(stand_ins, inventory, Stores([keyring, *stores.values(), known]))
    return sandbox, (*stores, "keyring")


def attach(
    stand_ins: Mapping[str, Any],
    providers: Mapping[str, Any],
    paths: Paths,
    inventory: Inventory | None = None,
) -> Seeding:
    """Seeders for a seeded, running sandbox (tests and benchmarks seed agents of their own),
    writing agents to the sandbox's inventory or to `inventory` (a scaled-out stack's)."""
    sandbox, sources = _sandbox(
        stand_ins, inventory or Inventory(paths.inventory), KeyringFile(paths.keyring), paths
    )
    seeders = {name: p.attach(sandbox, providers) for name, p in loaded().items()}
    return Seeding(sandbox, seeders, sources)


def _sweep_seeded(sweep: SweepSeeds) -> dict[str, Any]:
    return {
        "zombie_agent": fleet.ZOMBIE_AGENT,
        "orphan": list(sweep.orphan),
        "stale": list(sweep.stale),
        "long-lived": list(sweep.long_lived),
        "expired": list(sweep.expired),
        "reused": list(sweep.reused),
    }


def profile(
    paths: Paths,
    home: Path,
    seeding: Seeding,
    prefect_api: str | None,
    prefect_auth: str | None = None,
) -> dict[str, Any]:
    """The kill switch's settings while the sandbox runs: the core, then each provider's."""
    sections: dict[str, Any] = {}
    for seeder in seeding.seeders.values():
        sections.update(seeder.profile())
    return {
        "home": str(home),
        "target": "sandbox",
        "inventory_path": str(paths.inventory),
        "ledger_path": str(paths.ledger),
        "ledger_anchors": {"stream_path": str(paths.root / "ledger-anchors.jsonl")},
        "keyring_path": str(paths.keyring),
        "secret_sources": list(seeding.secret_sources),
        "protected_agents": list(DEFAULT_PROTECTED_AGENTS),
        "providers": list(seeding.seeders),
        "probe_deadline_s": 20.0,
        "probe_interval_s": 0.25,
        "action_deadline_s": 20.0,
        "prefect_api_url": prefect_api,
        "prefect_api_auth": prefect_auth,
        # A fresh secret for every alert source; a storm breaker small enough to see.
        "alerts": {**fresh_secrets(), "guards": {"storm_max_agents": 3}},
        **sections,
    }


def seed(
    paths: Paths,
    home: Path,
    stand_ins: Mapping[str, Any],
    prefect_api: str | None,
    prefect_auth: str | None = None,
) -> dict[str, Any]:
    """A fresh fleet in fresh stand-ins; writes the profile and `sweep-seeded.json`. Returns
    `providers` (status entries) and `seeded` (agent -> provider -> counts)."""
    inventory = Inventory(paths.inventory)
    keyring = KeyringFile(paths.keyring)
    inventory.clear()
    Plans(inventory).clear()  # plans of agents reset away: no re-run may draw on them
    Sightings(inventory).clear()
    keyring.clear()
    plugins = loaded()
    progress.emit("sandbox", f"seeding the demo fleet ({', '.join(plugins)})")
    sandbox, sources = _sandbox(stand_ins, inventory, keyring, paths, fresh=True)
    seeders = {name: plugin.bootstrap(sandbox) for name, plugin in plugins.items()}
    seeding = Seeding(sandbox, seeders, sources)
    seeded = fleet.seed(sandbox, seeders)
    sweep = SweepSeeds()
    for name, seeder in seeders.items():
        found = seeder.seed_sweep()
        sweep += found
        for agent_id, more in found.agents.items():
            mine = seeded.setdefault(agent_id, {})
            mine[name] = mine[name] + more if name in mine else more
    write_private(paths.root / "sweep-seeded.json", _sweep_seeded(sweep))
    write_private(paths.profile, profile(paths, home, seeding, prefect_api, prefect_auth))
    providers: dict[str, Any] = {}
    for seeder in seeders.values():
        providers.update(seeder.status())
    return {
        "providers": providers,
        "seeded": {
            agent_id: {name: counts.as_dict() for name, counts in by_provider.items()}
            for agent_id, by_provider in seeded.items()
        },
    }
