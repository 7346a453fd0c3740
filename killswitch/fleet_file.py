"""`agents.yaml`: the declared fleet — agents with owner, purpose, environment, status,
expiry, and their known credentials by reference (provider, kind, ref; never secrets).

Parsed once at the edge by pydantic (`extra="forbid"`); every malformed entry is reported
with its line, and nothing is written unless the whole file is valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from killswitch.errors import RefusedError
from killswitch.guards import validate_agent_id
from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, CredentialRef

# What secret material looks like: a reference never does.
SECRET_SHAPES = re.compile(
    r"^(sk-|xox[abposr]-|ghp_|gho_|ghs_|github_pat_|hvs\.|s\.[A-Za-z0-9]{20,}|-----BEGIN)"
    r"|^[A-Za-z0-9/+]{40}$"
)


class CredentialEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    ref: str = Field(min_length=1, max_length=512)

    @field_validator("ref")
    @classmethod
    def _not_a_secret(cls, ref: str) -> str:
        if SECRET_SHAPES.search(ref):
            raise ValueError(
                "looks like secret material; declare the credential by reference "
                "(key id, accessor, key id in the provider's console), never the secret"
            )
        return ref


class AgentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    owner: str = Field(min_length=1, description="a team, or a Slack user id (U…)")
    purpose: str = ""
    environment: str = ""
    status: Literal["active", "decommissioned"] = "active"
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
class Imported:
    agents: int
    credentials: int
    new_agents: tuple[str, ...]


class FleetFileError(RefusedError):
    code = "invalid-fleet-file"
    remediation = "Fix every line listed and import again; nothing was imported."


def load(path: Path, kinds: Mapping[str, Sequence[str]]) -> list[AgentEntry]:
    """Parse and validate the whole file; `kinds` maps each provider to the credential kinds
    it knows. Raises FleetFileError listing every problem with its line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise FleetFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        FleetFile.model_validate(data)
    except ValidationError as exc:
        raise FleetFileError(
            f"{path}:1: expected a mapping with one key, `agents:` (a list of agents) — "
            + "; ".join(e["msg"] for e in exc.errors())
        ) from exc
    nodes = _agent_nodes(root)
    problems: list[str] = []
    entries: list[AgentEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["agents"]):
        line = nodes[index].start_mark.line + 1 if index < len(nodes) else 0
        label = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            entry = AgentEntry.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "entry"
                at = _line_of(nodes[index], error["loc"]) if index < len(nodes) else line
                problems.append(f"{path}:{at}: agent {label!r}: {field}: {error['msg']}")
            continue
        if entry.id in seen:
            problems.append(
                f"{path}:{line}: agent {entry.id!r} is declared twice (first at line "
                f"{seen[entry.id]})"
            )
        seen.setdefault(entry.id, line)
        for i, credential in enumerate(entry.credentials):
            known = kinds.get(credential.provider)
            at = _line_of(nodes[index], ("credentials", i))
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
        raise FleetFileError(
            f"{len(problems)} problem(s) in {path}:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return entries


def apply(inventory: Inventory, entries: Sequence[AgentEntry]) -> Imported:
    """Write valid entries: agents upserted, their credentials declared (additive)."""
    new = [e.id for e in entries if inventory.get_agent(e.id) is None]
    count = 0
    for entry in entries:
        inventory.upsert_agent(
            Agent(
                id=entry.id,
                owner=entry.owner,
                status=AgentStatus(entry.status),
                purpose=entry.purpose,
                environment=entry.environment,
                expires_at=_instant(entry.expires),
            )
        )
        for credential in entry.credentials:
            inventory.declare(
                entry.id, CredentialRef(credential.provider, credential.kind, credential.ref)
            )
            count += 1
    return Imported(len(entries), count, tuple(new))


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


def _line_of(node: yaml.Node, loc: Sequence[Any]) -> int:
    """The line of the deepest node a validation error's location reaches."""
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
    return int(node.start_mark.line) + 1
