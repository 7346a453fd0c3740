"""The experiment's own sandbox, driven through the `killswitch` CLI in subprocesses.

One `Lab` per `chaos run` (Chaos Toolkit runs every activity of an experiment in one process):
its KILLSWITCH home, the sandbox's `status --json`, which providers the fault proxies can
reach, the agents the experiment seeded, every output a command printed (for the canary
check), and the checks and figures the activities recorded (for the hypothesis and the
results table).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

LOOPBACK = re.compile(r"(?:127\.0\.0\.1|localhost):(\d+)")
KILLSWITCH = str(Path(sys.executable).parent / "killswitch")


@dataclass
class Ran:
    """One finished `killswitch` command (its output stays in the lab, not in the journal)."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Check:
    """One invariant as an activity saw it."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Lab:
    home: Path
    owned: bool  # this experiment started the sandbox (and stops it)
    status: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)  # the experiment's targets
    bystanders: list[str] = field(default_factory=list)  # seeded, never targeted
    seeded: dict[str, dict[str, int]] = field(default_factory=dict)  # agent -> provider -> n
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    # -- commands -------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KILLSWITCH_", "PREFECT_"))}
        env.update(
            KILLSWITCH_HOME=str(self.home),
            KILLSWITCH_ACTOR="chaos",
            COLUMNS="200",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        env.update(extra)
        return env

    def cli(self, *args: str, timeout: float = 300, **extra: str) -> Ran:
        """Run the real console script; keep its output for the canary check."""
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603
            [KILLSWITCH, *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home.parent,
        )
        ran = Ran(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.outputs += [done.stdout, done.stderr]
        return ran

    def spawn(
        self, *args: str, preexec_fn: Callable[[], None] | None = None, **extra: str
    ) -> subprocess.Popen[str]:
        """Start a command in the background (`collect` gathers its output)."""
        return subprocess.Popen(  # noqa: S603
            [KILLSWITCH, *args],
            env=self.env(**extra),
            preexec_fn=preexec_fn,  # noqa: PLW1509
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home.parent,
        )

    def collect(self, proc: subprocess.Popen[str], started: float, timeout: float = 300) -> Ran:
        stdout, stderr = proc.communicate(timeout=timeout)
        self.outputs += [stdout, stderr]
        args = tuple(str(a) for a in proc.args[1:]) if isinstance(proc.args, list) else ()
        return Ran(args, proc.returncode, stdout, stderr, time.monotonic() - started)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    # -- the sandbox ----------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        self.status = self.cli("sandbox", "status", "--json").json()
        return self.status

    @property
    def ledger(self) -> Path:
        return Path(self.status["ledger"])

    @property
    def proxy_control(self) -> str:
        return str(self.status["stand_ins"]["proxy"]["control"])

    def proxies(self) -> dict[str, dict[str, Any]]:
        """The fault proxies as the sandbox describes them (name -> port, faults, requests)."""
        described: dict[str, dict[str, Any]] = httpx.get(self.proxy_control, timeout=10).json()
        return described

    def providers(self) -> list[str]:
        """Every provider the kill switch acts on in this sandbox (its profile)."""
        profile = json.loads(Path(self.status["profile"]).read_text())
        listed = profile.get("providers")
        if listed:
            return [str(p) for p in listed]
        return sorted(self.status["providers"])

    def reach(self) -> dict[str, dict[str, Any]]:
        """Per provider: the fault proxies its endpoints go through, and the endpoints that
        go direct (no proxy can fault them). Read from the sandbox's own profile, so a
        provider whose stand-in gains a proxy is covered the moment the sandbox says so."""
        profile = json.loads(Path(self.status["profile"]).read_text())
        by_port = {int(p["port"]): name for name, p in self.proxies().items()}
        reach: dict[str, dict[str, Any]] = {}
        for provider in self.providers():
            section = profile.get(provider) or {}
            ports = dict(_endpoints(section))
            material = self._material_endpoints(provider)
            ports.update(material)
            through = sorted({by_port[p] for p in ports.values() if p in by_port})
            direct = sorted(k for k, p in ports.items() if p not in by_port)
            reach[provider] = {"proxies": through, "direct": direct}
        return reach

    def _material_endpoints(self, provider: str) -> dict[str, int]:
        """Endpoints named inside probe material (GCP key files carry their `token_uri`)."""
        if provider != "gcp":
            return {}
        try:
            entries = json.loads(Path(self.status["keyring"]).read_text())["entries"]
        except (OSError, ValueError, KeyError):
            return {}
        for key, items in entries.items():
            if key.startswith("gcp.") and items:
                for value in items[0].values():
                    if isinstance(value, str) and "token_uri" in value:
                        uri = json.loads(value).get("token_uri", "")
                        port = urlsplit(uri).port
                        if port:
                            return {"key_file.token_uri": port}
        return {}

    def faultable(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """(proxy -> providers fully behind it, provider -> why it cannot be fully faulted)."""
        full: dict[str, list[str]] = {}
        not_faulted: dict[str, str] = {}
        for provider, reached in self.reach().items():
            if reached["direct"] or not reached["proxies"]:
                why = "no fault proxy" if not reached["proxies"] else "partly direct"
                not_faulted[provider] = (
                    f"{why}: {', '.join(reached['direct'])} reached directly"
                    + (f"; only via {', '.join(reached['proxies'])}" if reached["proxies"] else "")
                )
            else:
                for proxy in reached["proxies"]:
                    full.setdefault(proxy, []).append(provider)
        return full, not_faulted

    def behind(self, proxy: str) -> list[str]:
        """Providers any of whose endpoints go through `proxy` (what faulting it affects)."""
        return sorted(p for p, r in self.reach().items() if proxy in r["proxies"])

    def fault(self, target: str, **changes: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.proxy_control}/{target}", json=changes, timeout=10)
        response.raise_for_status()
        answered: dict[str, Any] = response.json()
        return answered

    def heal(self) -> None:
        """Every proxy back to clean, every propagation delay off."""
        self.fault("*", latency_ms=0, kind="", down=False)
        self.cli("sandbox", "lag", "*", "0")

    def seed(self, prefix: str, *, only: Sequence[str] | None = None) -> str:
        """A fresh agent in every stand-in (or `only` these providers), the inventory and the
        probe-material stores, as the test suite seeds them."""
        from killswitch.sandbox import fleet, seeding
        from killswitch.sandbox.plugin import AgentSpec
        from killswitch.sandbox.state import Paths

        attached = seeding.attach(
            self.status["stand_ins"], self.status["providers"], Paths.under(self.home)
        )
        agent_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        skip = frozenset(set(attached.seeders) - set(only)) if only is not None else frozenset()
        spec = AgentSpec(agent_id, "chaos", "chaos experiment agent", skip=skip)
        done = fleet.seed_agent(attached.sandbox, attached.seeders, spec)
        self.seeded[agent_id] = {p: s.credentials for p, s in done.items()}
        return agent_id

    def canaries(self) -> list[str]:
        from killswitch.secrets import KeyringFile

        return [s for s in KeyringFile(Path(self.status["keyring"])).secret_values() if s]


def only_providers(providers: str | Sequence[str] | None) -> list[str] | None:
    """A provider list from configuration ("aws,vault" or a list); None: every provider."""
    if not providers:
        return None
    if isinstance(providers, str):
        return [p.strip() for p in providers.split(",") if p.strip()] or None
    return list(providers)


def _endpoints(section: Mapping[str, Any], prefix: str = "") -> list[tuple[str, int]]:
    """Every loopback endpoint (URL or host:port) a profile section names, with its port."""
    found: list[tuple[str, int]] = []
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += _endpoints(value, f"{name}.")
        elif isinstance(value, str):
            found += [(name, int(port)) for port in LOOPBACK.findall(value)]
    return found


def open_lab(home: str = "", *, prefect: bool = True) -> Lab:
    """The sandbox at `home` if one runs there (the test suite's), else a new one of the
    experiment's own in a fresh home (stopped and removed by `close`)."""
    if home:
        lab = Lab(Path(home), owned=False)
        if lab.cli("sandbox", "status", "--json").code == 0:
            lab.refresh()
            return lab
    root = Path(tempfile.mkdtemp(prefix="killswitch-chaos-"))
    lab = Lab(root / "home", owned=True)
    lab.home.mkdir()
    args = ["sandbox", "up", "--json", "-q"] + ([] if prefect else ["--no-prefect"])
    started = lab.cli(*args, timeout=400)
    if started.code != 0:
        raise RuntimeError(f"the sandbox did not start: {started.stderr[-2000:]}")
    lab.refresh()
    return lab


def close_lab(lab: Lab) -> None:
    try:
        lab.heal()
    except (httpx.HTTPError, KeyError):  # the sandbox may be gone already
        pass
    if lab.owned:
        lab.cli("sandbox", "down")
        shutil.rmtree(lab.home.parent, ignore_errors=True)
