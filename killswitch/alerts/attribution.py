"""From an alert to its agents: an alert names a credential, rarely an agent.

In order, for every credential the alert names: its leaked value's keyed fingerprint (a
token with no id of its own), then its identifier in the inventory (declared credentials,
then what discovery last saw), then the provider itself (`Revoker.owner_of`: an AWS key id →
its user → the user's `agent-id` tag). An agent the alert names outright is taken as named.
The leaked value, when the alert carries it, becomes probe material for that one credential
— kept in memory for the run, never stored, logged or echoed. What was tried is kept, so an
alert that cannot be attributed is told with its reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from killswitch.alerts.fingerprints import Fingerprints
from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.errors import KillSwitchError, RefusedError
from killswitch.guards import validate_agent_id
from killswitch.retry import retrying_transient
from killswitch.runtime import Runtime
from killswitch.secrets import CARRIED, MappingSource
from killswitch.sightings import Sightings


@dataclass(frozen=True, slots=True)
class Attribution:
    """The agents an alert resolves to; how each credential was traced (or why not); and
    the leaked values as probe material, per agent and credential key (never shown)."""

    agents: tuple[str, ...]
    traced: tuple[str, ...]
    untraced: tuple[str, ...]
    material: Mapping[str, Mapping[str, Sequence[Mapping[str, str]]]] = field(
        default_factory=dict, repr=False
    )

    def secrets_for(self, agent_id: str) -> MappingSource | None:
        """The leaked values of this agent's credentials, as a secret source for its run."""
        entries = self.material.get(agent_id)
        return MappingSource(CARRIED, entries) if entries else None

    @property
    def leaked_keys(self) -> dict[str, list[str]]:
        """Per agent, the credential keys proven with the leaked value itself."""
        return {agent: sorted(keys) for agent, keys in self.material.items()}


def attribute(runtime: Runtime, alert: Alert, fingerprints: Fingerprints) -> Attribution:
    """Every agent the alert's credentials (and its named agent) resolve to."""
    agents: list[str] = []
    traced: list[str] = []
    untraced: list[str] = []
    material: dict[str, dict[str, list[dict[str, str]]]] = {}

    def found(agent_id: str, how: str) -> None:
        if agent_id not in agents:
            agents.append(agent_id)
        traced.append(how)

    if alert.agent_id is not None:
        try:
            found(validate_agent_id(alert.agent_id), f"agent {alert.agent_id} named by the alert")
        except RefusedError as exc:
            untraced.append(f"the alert's agent: {exc.message}")
    for credential in alert.credentials:
        owner, how, tried = _trace(runtime, credential, fingerprints, material)
        if owner is None:
            untraced.append(f"{credential.describe()}: " + "; ".join(tried))
        else:
            found(owner, f"{credential.describe()} → {owner} ({how})")
    return Attribution(tuple(agents), tuple(traced), tuple(untraced), material)


def _trace(
    runtime: Runtime,
    credential: LeakedCredential,
    fingerprints: Fingerprints,
    material: dict[str, dict[str, list[dict[str, str]]]],
) -> tuple[str | None, str, list[str]]:
    """(agent, how, what was tried) for one credential."""
    tried: list[str] = []
    if credential.secret is not None:
        value = credential.secret.get_secret_value()
        known = fingerprints.lookup(value)
        if known is not None:
            material.setdefault(known.agent_id, {}).setdefault(known.key, []).append(
                known.material(value)
            )
            return known.agent_id, "by the leaked value's fingerprint", tried
        tried.append("the leaked value matches no known secret's fingerprint")
    identifier = credential.identifier
    if not identifier:
        if not tried:
            tried.append("the alert names neither an identifier nor a value")
        return None, "", tried
    declared = [
        agent
        for (kind, ref), owners in runtime.inventory.declared_by().items()
        if ref == identifier and _provider_fits(credential.provider, kind)
        for agent in owners
    ]
    if declared:
        return declared[0], "declared in the inventory", tried
    tried.append("not declared in the inventory")
    seen = [
        n.agent_tag
        for n in Sightings(runtime.inventory).by_ref(identifier)
        if n.agent_tag and _provider_fits(credential.provider, n.kind)
    ]
    if seen:
        return seen[0], "seen by the last discovery", tried
    tried.append("not among the credentials discovery last saw")
    asked = [credential.provider] if credential.provider else list(runtime.revokers)
    for name in asked:
        revoker = runtime.revokers.get(name)
        if revoker is None:
            tried.append(f"{name} is not configured")
            continue
        try:
            owner = retrying_transient(runtime.settings.action_deadline_s)(
                revoker.owner_of, identifier
            )
        except KillSwitchError as exc:
            tried.append(f"{name} could not be asked: {exc.code}: {exc.message}")
            continue
        if owner:
            return owner, f"{name} names its owner", tried
        tried.append(f"{name} knows no agent for it")
    return None, "", tried


def _provider_fits(provider: str | None, kind: str) -> bool:
    """Credential kinds are `<provider>.<thing>`: the alert's provider, when it says one."""
    return provider is None or kind.startswith(f"{provider}.")
