"""`killswitch scale up|down|status`: PostgreSQL, a Prefect server on it, the work pool with
the deployments and provider limits, and N process workers, on this host; recorded in
`$KILLSWITCH_HOME/scale/state.json` (pids with their command-line markers), idempotent.

The workers run every flow run with the profile `scale up` writes beside the state (the one in
force, pointed at this server, with the provider limits enforced); `$KILLSWITCH_HOME/profile.json`
is linked to it while the stack runs (unless that file is an operator's own), so the CLI on this
host uses the stack without further setup. Nothing listens beyond loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from killswitch import progress
from killswitch.errors import ConfigurationError, SandboxError
from killswitch.postgres import redact_url
from killswitch.sandbox.processes import (
    free_port,
    prefect_healthy,
    spawn,
    stop,
    wait,
    write_private,
)
from killswitch.sandbox.state import pid_alive
from killswitch.scale import database
from killswitch.scale.settings import ScaleSettings
from killswitch.settings import default_home, load_settings, profile_path

SERVER_MARKER = "prefect server start"
WORKER_MARKER = "prefect worker start"
SERVER_READY_S = 180.0  # a fresh database: the server migrates it first (~30 s on 2 cores)
WORKERS_READY_S = 60.0


@dataclass(frozen=True, slots=True)
class Paths:
    """Every file of the stack, under `$KILLSWITCH_HOME/scale`."""

    root: Path

    @classmethod
    def under(cls, home: Path) -> Paths:
        return cls(home / "scale")

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def profile(self) -> Path:
        return self.root / "profile.json"

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def prefect_home(self, who: str) -> Path:
        return self.root / "prefect" / who


def _read(paths: Paths) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(paths.state.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def _prefect_env(paths: Paths, who: str, api_url: str, auth: str) -> dict[str, str]:
    paths.prefect_home(who).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KILLSWITCH_"))}
    env.update(
        PREFECT_HOME=str(paths.prefect_home(who)),
        PREFECT_API_URL=api_url,
        PREFECT_API_AUTH_STRING=auth,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def _base_profile(paths: Paths) -> tuple[dict[str, Any], Path | None]:
    """The profile in force before the stack (not the stack's own, when linked already)."""
    path = profile_path()
    if path is not None and path.resolve() == paths.profile.resolve():
        previous = _read(paths).get("previous_profile")
        path = Path(previous) if previous else None
    if path is None or not path.exists():
        return {}, None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read profile {path}: {exc}") from exc
    return data, path


def _read_profile(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def _limits(profile: Path) -> dict[str, int]:
    """Per provider: the profile's `scale.provider_limits`, else its revoker's max_workers."""
    from revokers.base import registered

    settings = load_settings(profile=profile)
    classes = registered()
    given = settings.scale.provider_limits
    return {
        p: int(given.get(p, classes[p].max_workers)) for p in settings.providers if p in classes
    }


def _link(home: Path, target: Path) -> str | None:
    """Point `$KILLSWITCH_HOME/profile.json` at the stack's profile unless it is an operator's
    own file; the link it replaced, as an absolute path (to restore at `down`, and to read as
    the profile the stack was made from: the sandbox links its own relatively)."""
    link = home / "profile.json"
    if link.exists() and not link.is_symlink():
        return None
    previous = str(link.parent / os.readlink(link)) if link.is_symlink() else ""
    if previous == str(target):
        return previous
    tmp = link.with_suffix(".json.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
    return previous


def up(
    home: Path | None = None, *, workers: int = 2, limits: dict[str, int] | None = None
) -> dict[str, Any]:
    """Start what is not running, register the deployments and limits, run `workers`
    workers (more are started, extra ones stopped); the status. `limits`: provider →
    calls in flight at once fleet-wide, kept in the stack's profile (`scale.provider_limits`)."""
    if workers < 0:
        raise ConfigurationError("--workers cannot be negative")
    if any(n < 1 for n in (limits or {}).values()):
        raise ConfigurationError("a provider limit is at least 1")
    home = home or default_home()
    paths = Paths.under(home)
    paths.root.mkdir(parents=True, exist_ok=True)
    state = _read(paths)
    base, base_path = _base_profile(paths)

    password = state.setdefault("postgres_password", secrets.token_urlsafe(24))
    pg = database.cluster(paths.postgres, password)
    if not pg.running():
        progress.emit("scale", "starting PostgreSQL")
    state["prefect_database_url"], own_url = database.start(pg)
    # An operator's own database (the environment's, the base profile's) wins over the stack's.
    state["database_url"] = (
        os.environ.get("KILLSWITCH_DATABASE_URL") or base.get("database_url") or own_url
    )
    write_private(paths.state, state)

    server = state.get("prefect") or {}
    if not (server.get("pid") and pid_alive(int(server["pid"]), server.get("marker", "-"))):
        port = free_port()
        auth = f"killswitch:{secrets.token_urlsafe(24)}"
        api_url = f"http://127.0.0.1:{port}/api"
        env = _prefect_env(paths, "server", api_url, auth)
        env.update(
            PREFECT_API_DATABASE_CONNECTION_URL=database.async_url(state["prefect_database_url"]),
            PREFECT_SERVER_API_AUTH_STRING=auth,
        )
        prefect = str(Path(sys.executable).parent / "prefect")
        marker = f"{SERVER_MARKER} --host 127.0.0.1 --port {port}"
        progress.emit("scale", f"starting the Prefect server on PostgreSQL at {api_url}")
        pid = spawn([prefect, *marker.split()[1:]], paths.logs / "prefect-server.log", env)
        server = {"pid": pid, "marker": marker, "api_url": api_url, "auth_string": auth}
        state["prefect"] = server
        write_private(paths.state, state)
        wait("the Prefect server", lambda: prefect_healthy(api_url), SERVER_READY_S, pid)

    profile = dict(base)
    profile.update(
        prefect_api_url=server["api_url"],
        prefect_api_auth=server["auth_string"],
        database_url=state["database_url"],
    )
    scale = {**(base.get("scale") or {}), "enforce_provider_limits": True}
    kept = dict(_read_profile(paths.profile).get("scale", {}).get("provider_limits") or {})
    if kept or limits:
        scale["provider_limits"] = {**scale.get("provider_limits", {}), **kept, **(limits or {})}
    profile["scale"] = scale
    config = ScaleSettings(**scale)
    write_private(paths.profile, profile)
    limits = _limits(paths.profile)
    if state["database_url"] == own_url:
        database.carry_inventory(load_settings(profile=paths.profile).inventory_file, own_url)
    state["previous_profile"] = str(base_path) if base_path else ""

    os.environ["PREFECT_API_URL"] = server["api_url"]
    os.environ["PREFECT_API_AUTH_STRING"] = server["auth_string"]
    paths.prefect_home("cli").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home("cli")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from killswitch.scale import registration

    progress.emit("scale", f"registering the work pool {config.work_pool!r}, deployments, limits")
    registered = registration.register(work_pool=config.work_pool, limits=limits)

    running = [w for w in state.get("workers", []) if pid_alive(int(w["pid"]), w["marker"])]
    for extra in running[workers:]:
        stop(int(extra["pid"]), extra["marker"])
    running = running[:workers]
    taken = {w["name"] for w in running}
    index = 0
    while len(running) < workers:
        index += 1
        name = f"killswitch-worker-{index}"
        if name in taken:
            continue
        env = _prefect_env(paths, name, server["api_url"], server["auth_string"])
        env.update(
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="5",
            KILLSWITCH_HOME=str(home),
            KILLSWITCH_PROFILE=str(paths.profile),
            KILLSWITCH_WORKER=name,
        )
        prefect = str(Path(sys.executable).parent / "prefect")
        marker = (
            f"{WORKER_MARKER} --pool {config.work_pool} --type process --name {name} "
            f"--work-queue default --work-queue {name} --limit {config.runs_per_worker}"
        )
        progress.emit("scale", f"starting worker {name}")
        pid = spawn([prefect, *marker.split()[1:]], paths.logs / f"{name}.log", env)
        running.append({"pid": pid, "marker": marker, "name": name})
    state["workers"] = running
    state["registered"] = registered
    linked = _link(home, paths.profile)
    state["profile_linked"] = linked is not None
    if linked is not None and linked != str(paths.profile):
        state["previous_profile"] = linked
    write_private(paths.state, state)
    _write_env(paths, state)

    wanted = {w["name"] for w in running}
    deadline = time.monotonic() + WORKERS_READY_S
    while wanted - set(registration.online_workers(config.work_pool)):
        if time.monotonic() > deadline:
            raise SandboxError(
                f"workers {sorted(wanted)} did not come online within {WORKERS_READY_S:.0f}s "
                f"(see {paths.logs})"
            )
        for w in running:
            if not pid_alive(int(w["pid"]), w["marker"]):
                raise SandboxError(f"worker {w['name']} exited: see {paths.logs}/{w['name']}.log")
        time.sleep(0.5)
    return status(home)


def _write_env(paths: Paths, state: dict[str, Any]) -> None:
    """`source`-able settings for a shell on this host (0600: it holds the API's auth)."""
    server = state["prefect"]
    lines = [
        f"export KILLSWITCH_PROFILE={paths.profile}",
        f"export PREFECT_API_URL={server['api_url']}",
        f"export PREFECT_API_AUTH_STRING={server['auth_string']}",
        f"export KILLSWITCH_DATABASE_URL={state['database_url']}",
    ]
    fd = os.open(paths.env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def status(home: Path | None = None) -> dict[str, Any]:
    """What runs (no secrets): PostgreSQL, the server, the workers online, the limits."""
    home = home or default_home()
    paths = Paths.under(home)
    state = _read(paths)
    server = state.get("prefect") or {}
    server_up = bool(server.get("pid")) and pid_alive(int(server["pid"]), server["marker"])
    healthy = server_up and prefect_healthy(server["api_url"])
    workers = [
        {"name": w["name"], "pid": w["pid"], "running": pid_alive(int(w["pid"]), w["marker"])}
        for w in state.get("workers", [])
    ]
    pg = database.cluster(paths.postgres, state.get("postgres_password", "")).running()
    running = healthy and pg and all(w["running"] for w in workers)
    return {
        "running": running,
        "home": str(paths.root),
        "postgres": {"running": pg, "url": redact_url(state.get("database_url") or "") or None},
        "prefect": {"running": healthy, "api_url": server.get("api_url")},
        "workers": workers,
        "registered": state.get("registered") or {},
        "profile": str(paths.profile),
        "profile_linked": bool(state.get("profile_linked")),
        "env_file": str(paths.env),
        "logs": str(paths.logs),
    }


def down(home: Path | None = None) -> dict[str, Any]:
    """Stop the workers, the server and PostgreSQL (by pid, each only if still ours); put the
    profile link back. The database's data stays (the next `up` finds it migrated)."""
    home = home or default_home()
    paths = Paths.under(home)
    state = _read(paths)
    for w in state.get("workers", []):
        stop(int(w["pid"]), w["marker"])
    server = state.get("prefect") or {}
    if server.get("pid"):
        stop(int(server["pid"]), server["marker"])
    database.cluster(paths.postgres, state.get("postgres_password", "")).stop()
    link = home / "profile.json"
    if link.is_symlink() and os.readlink(link) == str(paths.profile):
        previous = state.get("previous_profile") or ""
        link.unlink()
        if previous and Path(previous).exists():
            link.symlink_to(previous)
    state.update(workers=[], prefect={}, profile_linked=False)
    if paths.root.exists():
        write_private(paths.state, state)
    return status(home)
