"""`agents.yaml`: the declared fleet — agents with owner, purpose, environment, status,
expiry, and their known credentials by reference (provider, kind, ref; never secrets).

Parsed once at the edge by pydantic (`extra="forbid"`) after a bounded, alias-free read
(killswitch/fleet_yaml.py); every malformed entry is reported with its line, no value from
the file is echoed but a valid agent id, and nothing is written unless the whole file is
valid. An import changes only what the file states: an agent's lifecycle status (and any
field the file leaves out) stays as it is, and protected agents are refused outright.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from killswitch.errors import RefusedError
from killswitch.fleet_yaml import MAX_BYTES, FleetFileError, compose, construct, line_of, read, walk
from killswitch.fleet_yaml import duplicate_keys as _duplicate_keys
from killswitch.fleet_yaml import label as _label
from killswitch.guards import validate_agent_id
from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, CredentialRef
from killswitch.secret_shapes import looks_secret

__all__ = ["MAX_BYTES", "AgentEntry", "Change", "FleetFileError", "Imported", "apply", "load"]
NAME = r"^[a-z0-9][a-z0-9._-]{0,39}$"
REFERENCES_ONLY = (
    "looks like secret material; declare the credential by reference (key id, accessor, "
    "key id in the provider's console), never the secret"
)


class CredentialEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, pattern=NAME)
    kind: str = Field(min_length=1, pattern=NAME)
    ref: str = Field(min_length=1, max_length=512)


class AgentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    owner: str = Field(min_length=1, max_length=256, description="a team, or a Slack user id")
    purpose: str = Field("", max_length=1024)
    environment: str = Field("", max_length=64)
    status: Literal["active", "decommissioned"] | None = Field(
        None, description="only when stated does an import change an agent's lifecycle state"
    )
    expires: date | datetime | None = None
    credentials: list[CredentialEntry] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, raw: str) -> str:
        try:
            return validate_agent_id(raw)
        except RefusedError as exc:
            raise ValueError(exc.message) from exc


class FleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[Any]


@dataclass(frozen=True, slots=True)
class Change:
    """What an import does to one agent: created, changed (field, old, new), or unchanged."""

    agent: str
    change: Literal["created", "changed", "unchanged"]
    fields: tuple[tuple[str, str, str], ...] = ()
    new_credentials: int = 0


@dataclass(frozen=True, slots=True)
class Imported:
    agents: int
    credentials: int
    new_agents: tuple[str, ...]
    changes: tuple[Change, ...] = ()


def load(
    path: Path, kinds: Mapping[str, Sequence[str]], *, protected: Sequence[str] = ()
) -> list[AgentEntry]:
    """Parse and validate the whole file; `kinds` maps each provider to the credential kinds
    it knows; an entry for a `protected` agent is refused. Raises FleetFileError listing
    every problem with its line."""
    root = compose(read(path), path)
    problems = _duplicate_keys(root, path)
    problems.extend(
        f"{path}:{node.start_mark.line + 1}: {'.'.join(where) or 'key'}"
        f"{' (a key)' if is_key else ''}: {REFERENCES_ONLY}"
        for where, node, is_key in walk(root)
        if isinstance(node, yaml.ScalarNode) and looks_secret(node.value)
    )
    data = construct(root, path)
    try:
        FleetFile.model_validate(data)
    except ValidationError as exc:
        problems.append(
            f"{path}:1: expected a mapping with one key, `agents:` (a list of agents) — "
            + "; ".join(e["msg"] for e in exc.errors())
        )
        raise _refusal(path, problems) from exc
    nodes = _agent_nodes(root)
    entries: list[AgentEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["agents"]):
        line = nodes[index].start_mark.line + 1 if index < len(nodes) else 0
        name = _agent_label(raw, index)
        try:
            entry = AgentEntry.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(_label(p) for p in error["loc"]) or "entry"
                at = line_of(nodes[index], error["loc"]) if index < len(nodes) else line
                problems.append(f"{path}:{at}: agent {name}: {field}: {error['msg']}")
            continue
        if entry.id in protected:
            problems.append(
                f"{path}:{line}: agent {entry.id!r} is protected: an import never touches it "
                "(remove the entry; protected agents change only through change control)"
            )
        if entry.id in seen:
            problems.append(
                f"{path}:{line}: agent {entry.id!r} is declared twice (first at line "
                f"{seen[entry.id]})"
            )
        seen.setdefault(entry.id, line)
        for i, credential in enumerate(entry.credentials):
            known = kinds.get(credential.provider)
            at = line_of(nodes[index], ("credentials", i)) if index < len(nodes) else line
            if known is None:
                problems.append(
                    f"{path}:{at}: agent {entry.id!r}: unknown provider "
                    f"{credential.provider!r} (known: {', '.join(sorted(kinds))})"
                )
            elif credential.kind not in known:
                problems.append(
                    f"{path}:{at}: agent {entry.id!r}: {credential.provider} has no credential "
                    f"kind {credential.kind!r} (known: {', '.join(known)})"
                )
        entries.append(entry)
    if problems:
        raise _refusal(path, problems)
    return entries


def _refusal(path: Path, problems: Sequence[str]) -> FleetFileError:
    return FleetFileError(
        f"{len(problems)} problem(s) in {path}:\n" + "\n".join(f"  {p}" for p in problems)
    )


def _agent_label(raw: object, index: int) -> str:
    """The entry's id when it is a valid agent id (safe to print), else its position."""
    ident = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(ident, str) and len(ident) <= 64:
        try:
            return repr(validate_agent_id(ident))
        except RefusedError:
            if ident.isprintable() and not looks_secret(ident):
                return repr(ident)
    return f"#{index + 1}"


_FIELDS = (
    ("owner", "owner"),
    ("purpose", "purpose"),
    ("environment", "environment"),
    ("status", "status"),
    ("expires", "expires_at"),
)


def _merged(current: Agent | None, entry: AgentEntry) -> Agent:
    """The agent as the entry leaves it: fields the file leaves out stay as they are."""
    stated = entry.model_fields_set
    base = current or Agent(entry.id, entry.owner, AgentStatus.ACTIVE)
    changes: dict[str, Any] = {"owner": entry.owner}
    for name in ("purpose", "environment"):
        if name in stated or current is None:
            changes[name] = getattr(entry, name)
    if entry.status is not None:
        changes["status"] = AgentStatus(entry.status)
    if "expires" in stated or current is None:
        changes["expires_at"] = _instant(entry.expires)
    return replace(base, **changes)


def plan(inventory: Inventory | None, entries: Sequence[AgentEntry]) -> list[Change]:
    """What importing `entries` would do to each agent (the `--dry-run` diff)."""
    found: list[Change] = []
    for entry in entries:
        current = inventory.get_agent(entry.id) if inventory is not None else None
        declared = set(inventory.declared(entry.id)) if inventory is not None else set()
        refs = {CredentialRef(c.provider, c.kind, c.ref) for c in entry.credentials}
        new_refs = len(refs - declared)
        if current is None:
            found.append(Change(entry.id, "created", new_credentials=new_refs))
            continue
        after = _merged(current, entry)
        fields = tuple(
            (label, _shown(getattr(current, attr)), _shown(getattr(after, attr)))
            for label, attr in _FIELDS
            if getattr(current, attr) != getattr(after, attr)
        )
        kind: Literal["changed", "unchanged"] = "changed" if fields or new_refs else "unchanged"
        found.append(Change(entry.id, kind, fields, new_refs))
    return found


def _shown(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def apply(inventory: Inventory, entries: Sequence[AgentEntry]) -> Imported:
    """Write valid entries: only what each states changes; credentials are declared
    (additive). Returns what changed, per agent."""
    changes = plan(inventory, entries)
    count = 0
    for entry, change in zip(entries, changes, strict=True):
        if change.change != "unchanged":
            inventory.upsert_agent(_merged(inventory.get_agent(entry.id), entry))
        for credential in entry.credentials:
            inventory.declare(
                entry.id, CredentialRef(credential.provider, credential.kind, credential.ref)
            )
            count += 1
    new = tuple(c.agent for c in changes if c.change == "created")
    return Imported(len(entries), count, new, tuple(changes))


def _instant(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _agent_nodes(root: yaml.Node | None) -> list[yaml.Node]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "agents" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return []
