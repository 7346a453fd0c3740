"""Every provider plug-in, one line each. Adding a provider: its package under revokers/
(a `PLUGIN` in `__init__.py`, the revoker beside it), its sandbox stand-in, its tests, its
runbook page, and one line here."""

from __future__ import annotations

import importlib
from functools import cache

from revokers.plugin import Plugin

PACKAGES = (
    "revokers.aws",
    "revokers.vault",
    "revokers.gcp",
    "revokers.azure",
    "revokers.slack",
    "revokers.github",
    "revokers.openai",
    "revokers.anthropic",
)


@cache
def plugins() -> tuple[Plugin, ...]:
    """Every registered provider's plug-in descriptor (no SDK is imported)."""
    found: list[Plugin] = []
    for package in PACKAGES:
        plugin = importlib.import_module(package).PLUGIN
        if not isinstance(plugin, Plugin):
            raise TypeError(f"{package}.PLUGIN is not a Plugin")
        found.append(plugin)
    return tuple(found)


def plugin(name: str) -> Plugin | None:
    """The plug-in registered under `name`, if any."""
    return next((p for p in plugins() if p.name == name), None)
