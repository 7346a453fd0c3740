"""`killswitch sandbox up | status | down`: start, describe and stop the local stand-ins.

Everything lives under `$KILLSWITCH_HOME/sandbox` (never in the repository); every process
it starts is recorded with its pid and stopped by `down`, and nothing else is touched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from killswitch import progress
from killswitch.errors import SandboxError
from killswitch.inventory import Inventory
from killswitch.sandbox import (
    azure_fleet,
    fleet,
    gcp_fleet,
    saas_fleet,
    sweep_fleet,
    vault_fleet,
)
from killswitch.sandbox.daemon import MARKER
from killswitch.sandbox.state import Paths, is_running, pid_alive, read_state
from killswitch.secrets import KeyringFile, Stores
from killswitch.settings import DEFAULT_PROTECTED_AGENTS, VaultSettings
from killswitch.sightings import Sightings
from revokers.azure.graph import tls
from revokers.vault.material import VaultKvSource

PREFECT_MARKER = "prefect server start"
OPENBAO_MARKER = "server -dev"
SAAS = ("slack", "github", "openai", "anthropic")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    return process.pid


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def _wait(what: str, ready: Any, timeout: float, pid: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        # Not pid_alive(): right after the fork the child may not have exec'd yet, and its
        # command line is still ours.
        if not _exists(pid):
            raise SandboxError(f"{what} exited while starting: see {what} in the sandbox logs")
        time.sleep(0.1)
    raise SandboxError(f"{what} did not become ready within {timeout:.0f}s")


def _prefect_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def _start_prefect(paths: Paths) -> tuple[int, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(paths.prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect = str(Path(sys.executable).parent / "prefect")
    pid = _spawn(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        paths.logs / "prefect.log",
        env,
    )
    return pid, f"http://127.0.0.1:{port}/api"


def _start_openbao(paths: Paths) -> tuple[int, str, str]:
    """`bao server -dev` (in memory) on a free port, with a random root token."""
    port = _free_port()
    root = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    # The root token goes by environment, not argv (where `ps` would show it); HOME keeps
    # any token helper file inside the sandbox.
    env.update(BAO_DEV_ROOT_TOKEN_ID=root, HOME=str(paths.root))
    cmd = [
        str(vault_fleet.bao_binary()),
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    pid = _spawn(cmd, paths.logs / "openbao.log", env)
    return pid, f"http://127.0.0.1:{port}", root


def _vault_healthy(addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def _profile(
    paths: Paths, home: Path, providers: dict[str, Any], prefect_api: str | None
) -> dict[str, Any]:
    aws, vault = providers["aws"], providers["vault"]
    saas = {
        name: {"base_url": info["base_url"], "admin_key": info.get("admin_key")}
        for name, info in providers.items()
        if name in SAAS
    }
    return {
        "home": str(home),
        "target": "sandbox",
        "inventory_path": str(paths.inventory),
        "ledger_path": str(paths.ledger),
        "ledger_anchors": {"stream_path": str(paths.root / "ledger-anchors.jsonl")},
        "keyring_path": str(paths.keyring),
        "secret_sources": ["vault", "keyring"],
        "protected_agents": list(DEFAULT_PROTECTED_AGENTS),
        "providers": ["aws", "vault", "gcp", "azure", *SAAS],
        "probe_deadline_s": 20.0,
        "probe_interval_s": 0.25,
        "action_deadline_s": 20.0,
        "prefect_api_url": prefect_api,
        "aws": {
            **aws,
            "protected_principals": [fleet.ADMIN_USER, fleet.BREAKGLASS_USER],
        },
        "vault": {
            "addr": vault["addr"],
            "token": vault["token"],
            "protected_entities": ["breakglass"],
            "protected_accessors": [vault["root_accessor"]],
            "probe_read_path": vault_fleet.PROBE_READ_PATH,
            "kv_prefix": vault_fleet.KV_PREFIX,
        },
        "gcp": {
            "project": providers["gcp"]["project"],
            "grpc_target": providers["gcp"]["grpc_target"],
        },
        "azure": {
            k: providers["azure"][k]
            for k in (
                "tenant_id",
                "subscription_id",
                "client_id",
                "client_secret",
                "authority",
                "arm_url",
                "graph_url",
                "ca_cert",
            )
        },
        **saas,
        "slack_app": providers["slack_app"],
    }


def _saas_info(saas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each SaaS stand-in's base URL (where the real provider's API root would be), through
    the fault proxy."""
    url, keys = saas["proxied"], saas["admin_keys"]
    return {
        "slack": {"base_url": f"{url}/slack/api/"},
        "github": {"base_url": f"{url}/github"},
        "openai": {"base_url": f"{url}/openai/v1", "admin_key": keys["openai"]},
        "anthropic": {"base_url": f"{url}/anthropic/v1", "admin_key": keys["anthropic"]},
    }


def _proxy(stand_ins: dict[str, Any], name: str, direct: str) -> str:
    """Put (or re-point) the fault proxy `name` in front of `direct`; its URL."""
    port = int(direct.rsplit(":", 1)[1])
    response = httpx.post(
        stand_ins["proxy"]["control"],
        timeout=10,
        json={"name": name, "upstream_port": port, "latency_ms": stand_ins["proxy"]["latency_ms"]},
    )
    response.raise_for_status()
    return f"http://127.0.0.1:{response.json()['port']}"


def _seed(
    paths: Paths,
    home: Path,
    stand_ins: dict[str, Any],
    vault: vault_fleet.Vault,
    prefect_api: str | None,
) -> dict[str, Any]:
    inventory = Inventory(paths.inventory)
    keyring = KeyringFile(paths.keyring)
    inventory.clear()
    Sightings(inventory).clear()
    keyring.clear()
    progress.emit(
        "sandbox",
        "seeding the demo fleet (AWS, Vault, GCP, Azure, Slack, GitHub, OpenAI, Anthropic)",
    )
    token = vault_fleet.bootstrap(vault)
    kv_writer = VaultKvSource(
        VaultSettings(
            addr=vault.addr, token=SecretStr(vault.root_token), kv_prefix=vault_fleet.KV_PREFIX
        )
    )
    moto_url, saas_url = stand_ins["moto"]["url"], stand_ins["saas"]["url"]
    store = Stores([keyring, kv_writer])
    gcp = gcp_fleet.Gcp(stand_ins["gcp"]["grpc_target"], stand_ins["gcp"]["project"])
    azure = azure_fleet.Azure(stand_ins["azure"])
    admin = fleet.seed(
        moto_url, inventory, store, vault=vault, saas_url=saas_url, gcp=gcp, azure=azure
    )
    seeded = sweep_fleet.seed(admin, inventory, store, vault, saas_url)
    _write_private(paths.root / "sweep-seeded.json", seeded.as_dict())
    slack_app = saas_fleet.slack_app(saas_url)
    vault_proxied = _proxy(stand_ins, "vault", vault.addr)
    providers: dict[str, Any] = {
        "aws": {
            "endpoint_url": stand_ins["moto"]["proxied"],
            "region": fleet.REGION,
            "access_key_id": admin.access_key_id,
            "secret_access_key": admin.secret_access_key,
        },
        "vault": {
            "addr": vault_proxied,
            "token": token,
            "root_token": vault.root_token,
            "root_accessor": sweep_fleet.root_accessor(vault),
        },
        "gcp": dict(stand_ins["gcp"]),
        "azure": dict(stand_ins["azure"]),
        **_saas_info(stand_ins["saas"]),
        "slack_app": slack_app,
    }
    _write_private(paths.profile, _profile(paths, home, providers, prefect_api))
    # What scripts and tests need to act as Slack and as the on-call engineers:
    providers["slack"]["signing_secret"] = slack_app["signing_secret"]
    providers["slack"]["oncall_user_ids"] = [*slack_app["oncall_user_ids"], *saas_fleet.GROUP]
    providers["slack"]["channel"] = saas_fleet.INCIDENT_CHANNEL
    return providers


def _openbao(paths: Paths, processes: dict[str, Any], timeout: float) -> vault_fleet.Vault:
    """Start a fresh in-memory OpenBao and wait for it (a reset starts a new one)."""
    pid, addr, root = _start_openbao(paths)
    processes["openbao"] = {"pid": pid, "marker": OPENBAO_MARKER}
    _wait("OpenBao", lambda: _vault_healthy(addr), timeout, pid)
    return vault_fleet.Vault(addr, root)


def _stop(pid: int, marker: str, timeout: float = 10) -> None:
    if not pid_alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _exists(pid):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reseed(home: Path, paths: Paths, state: dict[str, Any], timeout: float) -> None:
    stand_ins = json.loads(paths.stand_ins.read_text())["stand_ins"]
    fleet.reset(stand_ins["moto"]["url"])
    saas_fleet.reset(stand_ins["saas"]["url"])
    azure = stand_ins["azure"]
    httpx.post(
        f"{azure['url']}/_sandbox/azure/reset", verify=tls(azure["ca_cert"]), timeout=10
    ).raise_for_status()
    old = state["processes"].get("openbao")
    if old:
        _stop(int(old["pid"]), str(old["marker"]))
    vault = _openbao(paths, state["processes"], timeout)
    _write_private(paths.state, state)
    state["providers"] = _seed(paths, home, stand_ins, vault, state["prefect"]["api_url"])
    state["seeded_at"] = datetime.now(UTC).isoformat()
    _write_private(paths.state, state)


def up(
    home: Path,
    *,
    reset: bool = False,
    prefect: bool = True,
    latency_ms: float = 0.0,
    timeout: float = 120,
) -> dict[str, Any]:
    """Start the stand-ins (moto, OpenBao, and a Prefect server) and seed the fleet.

    Idempotent while running; `reset` wipes the stand-ins and seeds a fresh fleet."""
    paths = Paths.under(home)
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = read_state(paths)
    if is_running(state):
        assert state is not None  # noqa: S101
        if reset:
            _reseed(home, paths, state, timeout)
        return status(home)
    if state:
        down(home)
    paths.stand_ins.unlink(missing_ok=True)
    progress.emit("sandbox", "starting stand-ins")
    pid = _spawn(
        [sys.executable, "-m", MARKER, str(paths.root), str(latency_ms)],
        paths.logs / "stand-ins.log",
    )
    processes: dict[str, Any] = {"stand-ins": {"pid": pid, "marker": MARKER}}
    prefect_api = None
    if prefect:
        prefect_pid, prefect_api = _start_prefect(paths)
        processes["prefect"] = {"pid": prefect_pid, "marker": PREFECT_MARKER}
    state = {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(),
        "dir": str(paths.root),
        "processes": processes,
        "prefect": {"api_url": prefect_api},
    }
    _write_private(paths.state, state)
    try:
        vault = _openbao(paths, processes, timeout)
        _write_private(paths.state, state)
        _wait("the stand-ins", paths.stand_ins.exists, timeout, pid)
        stand_ins = json.loads(paths.stand_ins.read_text())["stand_ins"]
        state["providers"] = _seed(paths, home, stand_ins, vault, prefect_api)
        state["seeded_at"] = datetime.now(UTC).isoformat()
        _write_private(paths.state, state)
        if prefect_api:
            progress.emit("sandbox", "waiting for the Prefect server")
            _wait(
                "the Prefect server",
                lambda: _prefect_healthy(prefect_api),
                timeout,
                processes["prefect"]["pid"],
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
    processes = {
        name: {**proc, "running": pid_alive(int(proc["pid"]), str(proc["marker"]))}
        for name, proc in state.get("processes", {}).items()
    }
    api_url = state.get("prefect", {}).get("api_url")
    return {
        "running": running,
        "dir": str(paths.root),
        "started_at": state.get("started_at"),
        "seeded_at": state.get("seeded_at"),
        "demo_agent": fleet.DEMO_AGENT,
        "agents": [{"id": a.id, "status": a.status.value, "owner": a.owner} for a in agents],
        "protected_agents": list(DEFAULT_PROTECTED_AGENTS),
        "keyring": str(paths.keyring),
        "profile": str(paths.profile),
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
            "running": bool(processes.get("prefect", {}).get("running")),
        },
        "processes": processes,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def down(home: Path, timeout: float = 15) -> list[str]:
    """Stop every process the sandbox started (by pid, checked by command line); keep the data."""
    paths = Paths.under(home)
    state = read_state(paths)
    stopped: list[str] = []
    if not state:
        return stopped
    live = {
        name: proc
        for name, proc in state.get("processes", {}).items()
        if pid_alive(int(proc["pid"]), str(proc["marker"]))
    }
    for proc in live.values():
        try:
            os.killpg(int(proc["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
    for name, proc in live.items():
        _stop(int(proc["pid"]), str(proc["marker"]), timeout)
        stopped.append(name)
    paths.state.unlink(missing_ok=True)
    paths.stand_ins.unlink(missing_ok=True)
    return stopped


def _exists(pid: int) -> bool:
    """True while the process exists and is not a zombie (we may be its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
