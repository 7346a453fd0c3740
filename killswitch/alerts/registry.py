"""The alert sources, found as plug-ins: every module under `killswitch/alerts/sources/`
that declares a `SOURCE` is one. The core (receiver, settings, OpenAPI document) knows
them only through here, so adding a source changes no core module."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.sources import Fetch, Source


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source is built with besides its own settings section."""

    replay: ReplayCache
    fetch: Fetch | None
    replay_window_s: int
    replay_retention_s: int


@dataclass(frozen=True, slots=True)
class Header:
    """A header the sender sends (for the OpenAPI document)."""

    name: str
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class SourcePlugin:
    """One alert source: `POST /alerts/<name>`."""

    name: str
    summary: str
    settings: type[BaseModel]
    body: type[BaseModel]
    build: Callable[[Any, SourceContext], Source]
    headers: Callable[[Any], tuple[Header, ...]]


@cache
def plugins() -> tuple[SourcePlugin, ...]:
    """Every source, in name order (importing each source module once)."""
    import killswitch.alerts.sources as package

    found: dict[str, SourcePlugin] = {}
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        declared = getattr(importlib.import_module(module.name), "SOURCE", None)
        if declared is None:
            continue
        if not isinstance(declared, SourcePlugin):
            raise TypeError(f"{module.name}.SOURCE is not a SourcePlugin")
        if declared.name in found:
            raise TypeError(f"two alert sources are named {declared.name!r}")
        found[declared.name] = declared
    return tuple(found[name] for name in sorted(found))


def names() -> tuple[str, ...]:
    """The source names (the `<source>` of `POST /alerts/<source>`)."""
    return tuple(p.name for p in plugins())
