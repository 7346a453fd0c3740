"""Finding the plug-ins: every registered provider's plug-in names its stand-in module."""

from __future__ import annotations

import importlib
from typing import cast

from killswitch.sandbox.plugin import StandIn


def module_of(provider: str) -> str:
    """The dotted path of a provider's stand-in module (the one place that reads it)."""
    from revokers.registry import plugin

    found = plugin(provider)
    if found is None:
        raise KeyError(f"no provider {provider!r} is registered")
    return found.stand_in


def loaded() -> dict[str, StandIn]:
    """Provider name -> its stand-in plug-in (`STAND_IN` in its module), for every provider."""
    from revokers.registry import plugins

    return {
        p.name: cast(StandIn, importlib.import_module(module_of(p.name)).STAND_IN)
        for p in plugins()
    }


def fault_targets() -> dict[str, list[str]]:
    """Fault proxy name -> the providers the kill switch reaches through it."""
    targets: dict[str, list[str]] = {}
    for name, plugin in loaded().items():
        if plugin.fault_target is not None:
            targets.setdefault(plugin.fault_target, []).append(name)
    return targets
