"""`killswitch sandbox up | status | down`: start, describe and stop the local stand-ins.

Everything lives under `$KILLSWITCH_HOME/sandbox` (never in the repository); every process
it starts is recorded with its pid and stopped by `down`, and nothing else is touched, but
for `$KILLSWITCH_HOME/profile.json`: a link to the sandbox's profile while it runs, unless
that file is someone else's.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from killswitch import progress
from killswitch.errors import SandboxError
from killswitch.inventory import Inventory
from killswitch.sandbox import fleet, http, processes, seeding
from killswitch.sandbox.daemon import MARKER
from killswitch.sandbox.processes import PREFECT_MARKER, spawn, wait, write_private
from killswitch.sandbox.state import (
    Paths,
    home_profile,
    is_running,
    link_profile,
    pid_alive,
    profile_linked,
    read_state,
    unlink_profile,
)
from killswitch.settings import DEFAULT_PROTECTED_AGENTS


def _seed(home: Path, paths: Paths, state: dict[str, Any]) -> None:
    stand_ins = json.loads(paths.stand_ins.read_text())["stand_ins"]
    prefect = state["prefect"]
    state.update(
        seeding.seed(paths, home, stand_ins, prefect["api_url"], prefect.get("auth_string"))
    )
    state["seeded_at"] = datetime.now(UTC).isoformat()
    write_private(paths.state, state)
    if not link_profile(home):
        progress.emit(
            "sandbox",
            f"{home_profile(home)} is not the sandbox's: left alone (the sandbox's profile is "
            f"{paths.profile})",
        )


def _reseed(home: Path, paths: Paths, state: dict[str, Any]) -> None:
    stand_ins = json.loads(paths.stand_ins.read_text())["stand_ins"]
    progress.emit("sandbox", "resetting the stand-ins")
    http.reset(stand_ins[http.PROXY]["url"])
    _seed(home, paths, state)


def up(
    home: Path,
    *,
    reset: bool = False,
    prefect: bool = True,
    latency_ms: float = 0.0,
    timeout: float = 120,
) -> dict[str, Any]:
    """Start the stand-ins (every plug-in's, in one daemon) and a Prefect server; seed the
    fleet. Idempotent while running; `reset` wipes the stand-ins and seeds a fresh fleet."""
    paths = Paths.under(home)
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = read_state(paths)
    if is_running(state):
        assert state is not None  # noqa: S101
        if reset:
            _reseed(home, paths, state)
        return status(home)
    if state:
        down(home)
    paths.stand_ins.unlink(missing_ok=True)
    progress.emit("sandbox", "starting stand-ins")
    pid = spawn(
        [sys.executable, "-m", MARKER, str(paths.root), str(latency_ms)],
        paths.logs / "stand-ins.log",
    )
    running: dict[str, Any] = {"stand-ins": {"pid": pid, "marker": MARKER}}
    prefect_api = prefect_auth = None
    if prefect:
        prefect_pid, prefect_api, prefect_auth = processes.start_prefect(paths)
        running["prefect"] = {"pid": prefect_pid, "marker": PREFECT_MARKER}
    state = {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(),
        "dir": str(paths.root),
        "processes": running,
        "prefect": {"api_url": prefect_api, "auth_string": prefect_auth},
    }
    write_private(paths.state, state)
    try:
        wait("the stand-ins", paths.stand_ins.exists, timeout, pid)
        _seed(home, paths, state)
        if prefect_api:
            progress.emit("sandbox", "waiting for the Prefect server")
            wait(
                "the Prefect server",
                lambda: processes.prefect_healthy(prefect_api),
                timeout,
                running["prefect"]["pid"],
            )
    except BaseException:
        down(home)
        raise
    return status(home)


def status(home: Path) -> dict[str, Any]:
    """What runs, where, and with which identity — enough for scripts outside the project."""
    paths = Paths.under(home)
    state = read_state(paths)
    running = is_running(state)
    if not state:
        return {"running": False, "dir": str(paths.root)}
    agents = Inventory(paths.inventory).list_agents() if paths.inventory.exists() else []
    seeded = state.get("seeded", {})
    described = {
        name: {**proc, "running": pid_alive(int(proc["pid"]), str(proc["marker"]))}
        for name, proc in {**state.get("processes", {}), **_children(paths)}.items()
    }
    api_url = state.get("prefect", {}).get("api_url")
    auth_string = state.get("prefect", {}).get("auth_string")
    return {
        "running": running,
        "dir": str(paths.root),
        "started_at": state.get("started_at"),
        "seeded_at": state.get("seeded_at"),
        "demo_agent": fleet.DEMO_AGENT,
        # `seeded`: per provider, what discovery finds for the agent as seeded.
        "agents": [
            {
                "id": a.id,
                "status": a.status.value,
                "owner": a.owner,
                "seeded": seeded.get(a.id, {}),
            }
            for a in agents
        ],
        "protected_agents": list(DEFAULT_PROTECTED_AGENTS),
        "keyring": str(paths.keyring),
        "profile": str(paths.profile),
        "profile_linked": profile_linked(home),
        "inventory": str(paths.inventory),
        "ledger": str(paths.ledger),
        "logs": str(paths.logs),
        "providers": state.get("providers", {}),
        # What `killswitch sweep` should find among the healthy fleet (references only).
        "sweep_seeded": _read_json(paths.root / "sweep-seeded.json"),
        # Direct addresses (seeding, scripts) and the fault proxies' control endpoint.
        "stand_ins": _stand_ins(paths),
        "prefect": {
            "api_url": api_url,
            "ui_url": api_url[: -len("/api")] if api_url else None,
            # Basic auth (`user:password`) for its API and UI: a sandbox secret, like the
            # admin credentials above; clients send PREFECT_API_AUTH_STRING.
            "auth_string": auth_string,
            "running": bool(described.get("prefect", {}).get("running")),
        },
        "processes": described,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _children(paths: Paths) -> dict[str, Any]:
    """The daemon's own child processes (a plug-in's server), as it last published them."""
    children: dict[str, Any] = (_read_json(paths.stand_ins) or {}).get("processes", {})
    return children


def _stand_ins(paths: Paths) -> dict[str, Any]:
    try:
        stand_ins: dict[str, Any] = json.loads(paths.stand_ins.read_text())["stand_ins"]
    except (OSError, ValueError, KeyError):
        return {}
    return stand_ins


def fault(home: Path, target: str, **changes: Any) -> dict[str, Any]:
    """Change what a stand-in's fault proxy does (target `*`: every one)."""
    control = _stand_ins(Paths.under(home)).get("proxy", {}).get("control")
    if not control:
        raise SandboxError("the sandbox is not running (or predates its fault proxies)")
    response = httpx.post(f"{control}/{target}", json=changes, timeout=10)
    if response.status_code != 200:
        raise SandboxError(f"fault proxy refused: {response.text}")
    described: dict[str, Any] = response.json()
    return described


def lag(home: Path, provider: str, seconds: float, *, flap: bool = False) -> dict[str, Any]:
    """Set a stand-in's propagation delay (`*`: every stand-in that has one; 0: off)."""
    url = _stand_ins(Paths.under(home)).get(http.PROXY, {}).get("url")
    if not url:
        raise SandboxError("the sandbox is not running")
    return http.set_lag(str(url), provider, seconds, flap=flap)


def down(home: Path, timeout: float = 15) -> list[str]:
    """Stop every process the sandbox started (by pid, checked by command line); keep the
    data; remove `$KILLSWITCH_HOME/profile.json` if it is the sandbox's link."""
    paths = Paths.under(home)
    unlink_profile(home)
    state = read_state(paths)
    stopped: list[str] = []
    if not state:
        return stopped
    # The daemon's children share its process group; listed too in case it died alone.
    live = {
        name: proc
        for name, proc in {**state.get("processes", {}), **_children(paths)}.items()
        if pid_alive(int(proc["pid"]), str(proc["marker"]))
    }
    for proc in live.values():
        processes.send(int(proc["pid"]), signal.SIGTERM)
    for name, proc in live.items():
        processes.stop(int(proc["pid"]), str(proc["marker"]), timeout)
        stopped.append(name)
    paths.state.unlink(missing_ok=True)
    paths.stand_ins.unlink(missing_ok=True)
    return stopped
