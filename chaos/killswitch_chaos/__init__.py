"""killswitch's Chaos Toolkit extension: actions and probes that drive the `killswitch` CLI
against a sandbox of the experiment's own, and check the kill switch's invariants.

`control` starts (and stops) the sandbox; `actions` inject faults and run containments;
`probes` are the steady-state hypothesis (ledger verifies, no canary secret in any output,
agents outside the experiment untouched, every invariant the actions checked held).
"""

from __future__ import annotations

from killswitch_chaos.lab import Lab

_current: Lab | None = None


def lab() -> Lab:
    """The experiment's sandbox (`control.configure_control` opened it)."""
    if _current is None:
        raise RuntimeError("no sandbox: the experiment needs the killswitch_chaos.control control")
    return _current


def set_lab(opened: Lab | None) -> None:
    global _current
    _current = opened
