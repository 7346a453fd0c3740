"""Playbooks: YAML files that say what each kind of alert does — contain at once, ask the
on-call with a button, or only tell the incident channel — and under which guards.

```yaml
- name: aws-exposed-key
  match: {source: aws, event: AWS_RISK_CREDENTIALS_EXPOSED}
  do: contain
  guards: {max_agents: 1, environments: [prod, staging]}
```

Files are read in name order, entries in file order; the first playbook whose `match`
holds decides. Parsed once by pydantic (`extra="forbid"`) after the same bounded YAML read
as `agents.yaml`; every problem is reported with its file and line, and nothing is loaded
unless every file is valid. `destroy` is never an alert action. The JSON Schema of the
language is generated from these models (`killswitch playbook schema`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from killswitch.alerts.models import Alert
from killswitch.errors import RefusedError
from killswitch.fleet_yaml import compose, construct, line_of, read
from killswitch.fleet_yaml import duplicate_keys as _duplicate_keys
from killswitch.fleet_yaml import label as _label

SOURCES = ("aws", "sns", "alertmanager", "github", "generic")
Source = Literal["aws", "sns", "alertmanager", "github", "generic"]
Decision = Literal["contain", "ask", "notify"]
NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
SCHEMA_ID = "https://killswitch.dev/schemas/playbooks.json"


class PlaybookError(RefusedError):
    code = "invalid-playbook"
    remediation = (
        "Fix every problem listed (file:line), then `killswitch playbook validate`; "
        "nothing was loaded."
    )


def _glob(pattern: str) -> str:
    """A shell-style pattern (`*`, `?`, `[…]`) whose brackets close; refuse one that does not
    (fnmatch would silently read `[` as a literal and match nothing you meant)."""
    if not pattern:
        raise ValueError("an empty pattern matches nothing; leave the field out instead")
    depth = 0
    for ch in pattern:
        if ch == "[":
            if depth:
                raise ValueError(f"bad glob {pattern!r}: '[' inside a bracket expression")
            depth = 1
        elif ch == "]" and depth:
            depth = 0
    if depth:
        raise ValueError(f"bad glob {pattern!r}: a '[' is never closed")
    if "]" in pattern.replace("[]", "") and "[" not in pattern:
        raise ValueError(f"bad glob {pattern!r}: a ']' without its '['")
    return pattern


Glob = Annotated[str, Field(max_length=256), AfterValidator(_glob)]


class Match(BaseModel):
    """Which alerts a playbook is for; every field given must hold (globs are shell-style,
    case-sensitive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source = Field(description="the receiver path the alert came in on")
    event: Glob | None = Field(
        None, description="the source's event: AWS Health event type, alert name, action…"
    )
    finding_type: Glob | None = Field(
        None, description="a detector's finding type, e.g. UnauthorizedAccess:IAMUser/*"
    )
    min_severity: float | None = Field(
        None, ge=0, le=10, description="the alert's severity must be at least this (0-10)"
    )
    labels: dict[str, Glob] = Field(
        default_factory=dict, description="labels the alert must carry, each matching its glob"
    )

    def holds(self, alert: Alert) -> bool:
        if alert.source != self.source:
            return False
        if self.event is not None and not fnmatch.fnmatchcase(alert.event, self.event):
            return False
        if self.finding_type is not None and not fnmatch.fnmatchcase(
            alert.finding_type or "", self.finding_type
        ):
            return False
        if self.min_severity is not None and (
            alert.severity is None or alert.severity < self.min_severity
        ):
            return False
        return all(
            fnmatch.fnmatchcase(str(alert.labels.get(key, "")), pattern) and key in alert.labels
            for key, pattern in self.labels.items()
        )


class Guards(BaseModel):
    """Limits on what one alert may do, checked before anything is touched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_agents: int = Field(
        1, ge=1, le=100, description="an alert resolving to more agents asks a human instead"
    )
    environments: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(
        (), description="contain only agents of these environments (empty: any)"
    )


class Playbook(BaseModel):
    """One rule: which alerts, what to do, under which guards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME, description="unique across every playbook file")
    description: str = Field("", max_length=500)
    match: Match
    do: Decision = Field(
        description="contain: at once; ask: a Slack button to the on-call; notify: tell only"
    )
    guards: Guards = Guards()

    @field_validator("do", mode="before")
    @classmethod
    def _never_destroy(cls, value: object) -> object:
        if value in ("destroy", "decommission"):
            raise ValueError(
                f"{value!r} is never an alert action: an alert contains (reversibly); "
                "destroying waits for a human (`killswitch decommission`)"
            )
        return value


PLAYBOOKS: TypeAdapter[list[Playbook]] = TypeAdapter(list[Playbook])


def schema() -> dict[str, Any]:
    """The JSON Schema of a playbook file (a list of playbooks), from the models."""
    generated: dict[str, Any] = PLAYBOOKS.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "killswitch playbooks",
        "description": "A list of playbooks: which alerts do what (contain, ask, notify).",
        **generated,
    }


@dataclass(frozen=True, slots=True)
class Loaded:
    """A valid playbook, and where it was read."""

    playbook: Playbook
    path: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Book:
    """Every playbook of a directory, in the order they are tried."""

    entries: tuple[Loaded, ...]

    def match(self, alert: Alert) -> Loaded | None:
        """The first playbook whose match holds, or None (the alert is only told)."""
        return next((e for e in self.entries if e.playbook.match.holds(alert)), None)

    @property
    def names(self) -> list[str]:
        return [e.playbook.name for e in self.entries]


def default_directory() -> Path:
    """The playbooks shipped with the kill switch (`playbooks/` beside the package)."""
    return Path(__file__).resolve().parents[2] / "playbooks"


def files(directory: Path) -> list[Path]:
    """The playbook files of a directory (`*.yaml`, `*.yml`), in name order."""
    if not directory.is_dir():
        raise PlaybookError(f"{directory}: not a directory of playbooks")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load(directory: Path) -> Book:
    """Parse and validate every file; raise PlaybookError listing every problem with its
    file:line when any is wrong (nothing is loaded then)."""
    problems: list[str] = []
    entries: list[Loaded] = []
    seen: dict[str, str] = {}
    found = files(directory)
    if not found:
        raise PlaybookError(f"{directory}: no playbook files (*.yaml)")
    for path in found:
        for entry in _load_file(path, problems):
            name = entry.playbook.name
            if name in seen:
                problems.append(
                    f"{entry.where}: playbook {name!r} is defined twice (first at {seen[name]})"
                )
            seen.setdefault(name, entry.where)
            entries.append(entry)
    if problems:
        raise PlaybookError(
            f"{len(problems)} problem(s) in the playbooks of {directory}:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return Book(tuple(entries))


def _load_file(path: Path, problems: list[str]) -> list[Loaded]:
    try:
        root = compose(read(path), path)
        problems.extend(_duplicate_keys(root, path))
        data = construct(root, path)
    except RefusedError as exc:  # bad YAML, too big, too deep, aliases: with its line
        problems.append(exc.message)
        return []
    if data is None:
        problems.append(f"{path}:1: empty file (expected a list of playbooks)")
        return []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        problems.append(f"{path}:1: expected a list of playbooks (`- name: …`)")
        return []
    loaded: list[Loaded] = []
    for index, raw in enumerate(data):
        node = root.value[index]
        line = node.start_mark.line + 1
        try:
            playbook = Playbook.model_validate(raw)
        except ValidationError as exc:
            label = _entry_label(raw, index)
            for error in exc.errors():
                field = ".".join(_label(p) for p in error["loc"]) or "entry"
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(
                    f"{path}:{line_of(node, error['loc'])}: playbook {label}: {field}: {message}"
                )
            continue
        loaded.append(Loaded(playbook, path, line))
    return loaded


def _entry_label(raw: object, index: int) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if isinstance(name, str) and re.fullmatch(NAME, name):
        return repr(name)
    return f"#{index + 1}"
