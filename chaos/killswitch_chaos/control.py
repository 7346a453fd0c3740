"""A Chaos Toolkit control: the experiment's own sandbox for the length of the run.

`configure_control` opens it (the sandbox already running at `killswitch_home`, if any, as
the test suite's; otherwise a new one in a fresh home) and seeds the bystander agents that
the hypothesis checks stay untouched; `cleanup_control` heals every fault and stops the
sandbox it started."""

from __future__ import annotations

from typing import Any

import killswitch_chaos
from killswitch_chaos.lab import close_lab, only_providers, open_lab


def configure_control(
    configuration: dict[str, Any] | None = None, bystanders: int = 1, **_: Any
) -> None:
    configuration = configuration or {}
    opened = open_lab(str(configuration.get("killswitch_home") or ""))
    killswitch_chaos.set_lab(opened)
    only = only_providers(configuration.get("providers"))
    for _i in range(bystanders):
        opened.bystanders.append(opened.seed("bystander", only=only))
    # A fresh sandbox has no ledger until a run writes one: a dry run of a bystander (it
    # changes nothing) starts it, so that `audit verify` has a chain to check from the start.
    for agent in opened.bystanders[:1]:
        shown = opened.cli("contain", agent, "--reason", "chaos: the ledger's start", "--dry-run")
        if shown.code != 0:
            raise RuntimeError(f"a dry run of {agent} failed: {shown.stderr[-500:]}")


def cleanup_control() -> None:
    opened = killswitch_chaos._current
    if opened is not None:
        close_lab(opened)
        killswitch_chaos.set_lab(None)
