"""Reading an untrusted YAML file safely: bounded size, UTF-8, no aliases, no duplicate keys.

An alias bomb of a few hundred bytes expands to gigabytes once printed; a large file costs
about ninety times its size to parse. So: the size is capped before parsing, aliases are
refused (a fleet file never needs them), the number of nodes is capped, duplicate keys are
errors with their line, and no error message ever carries a value from the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from killswitch.errors import RefusedError

MAX_BYTES = 5 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 32  # a fleet file nests five deep; libyaml's composer recurses in C
SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,39}$")
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FleetFileError(RefusedError):
    code = "invalid-fleet-file"
    remediation = "Fix every line listed and import again; nothing was imported."


def read(path: Path) -> str:
    """The file's text: at most MAX_BYTES (read no further: /dev/zero ends too), UTF-8."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FleetFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    if len(raw) > MAX_BYTES:
        raise FleetFileError(
            f"{path}: larger than {MAX_BYTES // 2**20} MiB; refused before parsing",
            remediation="Split the fleet into several files of at most 5 MiB and import each.",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FleetFileError(
            f"{path}:{line}: not UTF-8 (an invalid byte at offset {exc.start})",
            remediation="Save the file as UTF-8 and import again; nothing was imported.",
        ) from exc


def compose(text: str, path: Path) -> yaml.Node | None:
    """The file's node tree, after an event pass that refuses aliases and caps the size."""
    try:
        count = depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise FleetFileError(
                        f"{path}:{_line(event)}: nested more than {MAX_DEPTH} "
                        "deep; not a fleet file"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                continue
            elif isinstance(event, yaml.AliasEvent):
                raise FleetFileError(
                    f"{path}:{_line(event)}: YAML aliases (*name) are not accepted "
                    "in a fleet file; write the value out"
                )
            count += isinstance(event, yaml.NodeEvent)
            if count > MAX_NODES:
                raise FleetFileError(f"{path}: more than {MAX_NODES} YAML nodes; refused")
        node: yaml.Node | None = yaml.compose(text, Loader=_LOADER)
        return node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        # `problem` names the syntax error; str(exc) would quote the offending line.
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise FleetFileError(f"{where}: not valid YAML: {problem}") from exc


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 0


def construct(root: yaml.Node | None, path: Path) -> Any:
    """Python values from the node tree (safe constructors only)."""
    if root is None:
        return None
    try:
        return yaml.SafeLoader("").construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise FleetFileError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', None) or 'bad value'}"
        ) from exc
    except RecursionError as exc:
        raise FleetFileError(f"{path}: nested too deeply to be a fleet file") from exc


def label(part: object) -> str:
    """A path component fit to print: a plain key or an index; anything else is withheld."""
    if isinstance(part, int) or (isinstance(part, str) and SAFE_KEY.match(part)):
        return str(part)
    return "<key>"


def walk(root: yaml.Node | None) -> Iterator[tuple[tuple[str, ...], yaml.Node, bool]]:
    """Every node with its printable path; the flag is True for a mapping's key node."""
    if root is None:
        return
    stack: list[tuple[tuple[str, ...], yaml.Node]] = [((), root)]
    while stack:
        where, node = stack.pop()
        yield where, node, False
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*where, label(key.value if isinstance(key, yaml.ScalarNode) else "?"))
                yield here, key, True
                stack.append((here, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(((*where, str(i)), child) for i, child in enumerate(node.value))


def duplicate_keys(root: yaml.Node | None, path: Path) -> list[str]:
    """`file:line` of every key that appears twice in one mapping (YAML would keep the last)."""
    problems: list[str] = []
    for where, node, _ in walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: dict[str, int] = {}
        for key, _value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                field = ".".join((*where, label(key.value))) or label(key.value)
                problems.append(
                    f"{path}:{line}: duplicate key {field} (first at line {seen[key.value]})"
                )
            seen.setdefault(key.value, line)
    return problems


def line_of(node: yaml.Node, loc: Sequence[Any]) -> int:
    """The line of the deepest node a validation error's location reaches."""
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                node = key or node
                break
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
    return int(node.start_mark.line) + 1
