"""Which agents a fleet containment acts on: named (`--agents`, `--agents-from`), a team's
(`--owner`), or every agent holding one leaked credential (`--credential`: the inventory's
declared references ∪ the sweep's sightings ∪ the providers' own answer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from killswitch.errors import KillSwitchError, RefusedError
from killswitch.guards import WILDCARDS
from killswitch.models import AgentStatus
from killswitch.runtime import Runtime
from killswitch.sightings import Sightings

log = logging.getLogger(__name__)
MAX_AGENTS = 10_000


@dataclass(frozen=True, slots=True)
class Selection:
    """The agents to plan for, in order, each once; `skipped`: agents a selector matched
    that are never acted on (protected, decommissioned), with why."""

    agents: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    how: str = ""


def read_ids(path: Path) -> list[str]:
    """One agent id a line; blank lines and `#` comments ignored."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RefusedError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


def holders(runtime: Runtime, credential: str) -> list[str]:
    """Every agent that holds `credential` (`kind:ref`, or a bare ref): declared in the
    inventory, tagged on a sighting of the sweep, or named by a provider's own records."""
    wanted = credential.strip()
    if not wanted or any(ch in WILDCARDS for ch in wanted):
        raise RefusedError(f"{credential!r} is not one credential reference (no wildcards)")
    found: dict[str, None] = {}
    for (kind, ref), agents in runtime.inventory.declared_by().items():
        if wanted in (ref, f"{kind}:{ref}"):
            found.update(dict.fromkeys(agents))
    for nhi in Sightings(runtime.inventory).nhis():
        if nhi.agent_tag and wanted in (nhi.ref, f"{nhi.kind}:{nhi.ref}"):
            found[nhi.agent_tag] = None
    bare = wanted.split(":", 1)[1] if ":" in wanted else wanted
    for name, revoker in runtime.revokers.items():
        try:
            owner = revoker.owner_of(bare)
        except KillSwitchError as exc:
            log.info("%s could not say who holds the credential: %s", name, exc.message)
            continue
        if owner:
            found[owner] = None
    return list(found)


def select(
    runtime: Runtime,
    *,
    agents: str | None = None,
    agents_from: Path | None = None,
    owner: str | None = None,
    credential: str | None = None,
) -> Selection:
    """The union of what every given selector names. Named agents go to the guards as given
    (a wildcard, unknown or protected id refuses the fleet); agents found by owner or
    credential skip the protected and the decommissioned, saying so."""
    named: list[str] = []
    how: list[str] = []
    if agents is not None:
        named += [a.strip() for a in agents.split(",") if a.strip()]
        how.append("--agents")
    if agents_from is not None:
        named += read_ids(agents_from)
        how.append(f"--agents-from {agents_from}")
    found: list[str] = []
    if owner is not None:
        team = owner.strip()
        if not team or any(ch in WILDCARDS for ch in team):
            raise RefusedError(f"{owner!r} is not one owner (no wildcards)")
        found += [a.id for a in runtime.inventory.list_agents() if a.owner == team]
        how.append(f"--owner {team}")
    if credential is not None:
        found += holders(runtime, credential)
        how.append("--credential")
    if not how:
        raise RefusedError("name the fleet: --agents, --agents-from, --owner or --credential")
    skipped: list[str] = []
    protected = set(runtime.settings.protected_agents)
    chosen = dict.fromkeys(named)
    for agent_id in dict.fromkeys(found):
        if agent_id in chosen:
            continue
        agent = runtime.inventory.get_agent(agent_id)
        if agent_id in protected:
            skipped.append(f"{agent_id}: protected")
        elif agent is None:
            skipped.append(f"{agent_id}: not in the inventory")
        elif agent.status is AgentStatus.DECOMMISSIONED:
            skipped.append(f"{agent_id}: decommissioned")
        else:
            chosen[agent_id] = None
    if not chosen:
        raise RefusedError(f"no agent to contain ({', '.join(how)} matched none)")
    if len(chosen) > MAX_AGENTS:
        raise RefusedError(f"{len(chosen)} agents: a fleet holds at most {MAX_AGENTS}")
    return Selection(tuple(chosen), tuple(skipped), ", ".join(how))
