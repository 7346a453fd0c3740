"""Shared fixtures: one sandbox per test session, started and stopped through the real CLI.

Under `pytest -n 2` (what `make test` runs) every xdist worker is a session of its own: its
own sandbox (free ports, a home under its own basetemp) and its own PREFECT_HOME below.

Integration tests run against the sandbox's stand-ins (moto with auth enforced, a Prefect
server); each test that changes state seeds agents of its own, so tests do not depend on
each other's order.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from killswitch.inventory import Inventory
from killswitch.models import AgentStatus
from killswitch.runtime import Runtime
from killswitch.sandbox import fleet, seeding
from killswitch.sandbox.aws import fleet as aws_fleet
from killswitch.sandbox.azure import fleet as azure_fleet
from killswitch.sandbox.gcp import fleet as gcp_fleet
from killswitch.sandbox.plugin import AgentSpec
from killswitch.sandbox.state import Paths, pid_alive
from killswitch.sandbox.vault import fleet as vault_fleet
from killswitch.secrets import KeyringFile, Stores
from killswitch.settings import Settings, load_settings

KILLSWITCH = str(Path(sys.executable).parent / "killswitch")
# In-process flows (tests/flows) must not touch ~/.prefect; set before Prefect is imported.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="killswitch-tests-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"


# The two narratives that run a sandbox of their own, a minute or more each.
LONGEST = ("tests/test_runbooks.py", "tests/test_demo.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first, then the other `slow` ones, each group in its own order:
    with `-n 2` (pytest-xdist hands tests out in turn) the two narratives start at once on
    two workers, side by side, instead of trailing at the end of the run."""

    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(LONGEST):
            return 0
        return 1 if item.get_closest_marker("slow") is not None else 2

    items.sort(key=rank)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILLSWITCH_", "PREFECT_"))}
    env.update(KILLSWITCH_HOME=str(home), KILLSWITCH_ACTOR="test-suite", COLUMNS="200")
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, timeout: float = 180, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the real `killswitch` console script as a user would."""
    return subprocess.run(
        [KILLSWITCH, *args],
        env=cli_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd or home.parent,
    )


@pytest.fixture(scope="session")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("killswitch-home")


@pytest.fixture(scope="session")
def sandbox(sandbox_home: Path) -> Iterator[dict[str, Any]]:
    """`killswitch sandbox up --json` once per session; `down` at the end, whatever happened."""
    started = run_cli(sandbox_home, "sandbox", "up", "--json", timeout=240)
    try:
        assert started.returncode == 0, started.stderr
        yield json.loads(started.stdout)
    finally:
        if "prefect" in sys.modules:  # ship in-process flow logs before the server goes
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()
        running = json.loads(run_cli(sandbox_home, "sandbox", "status", "--json").stdout or "{}")
        stopped = run_cli(sandbox_home, "sandbox", "down")
        assert stopped.returncode == 0, stopped.stderr
        # moto, OpenBao and Prefect are gone, whatever happened in the session.
        for name, proc in running.get("processes", {}).items():
            assert not pid_alive(int(proc["pid"]), proc["marker"]), f"{name} still runs"


def prefect_headers(sandbox: Mapping[str, Any]) -> dict[str, str]:
    """The basic-auth header the sandbox's Prefect API wants (`sandbox status --json`)."""
    auth = str(sandbox["prefect"]["auth_string"])
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


@pytest.fixture(scope="session")
def prefect_http(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    """An httpx client of the sandbox's Prefect API, authenticated; a connection per request
    (a kept-alive one the server closed while idle was reset under a test's next call)."""
    with httpx.Client(
        base_url=str(sandbox["prefect"]["api_url"]) + "/",
        headers=prefect_headers(sandbox),
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        yield client


@pytest.fixture(scope="session")
def settings(sandbox: dict[str, Any], sandbox_home: Path) -> Settings:
    return load_settings(profile=Paths.under(sandbox_home).profile)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    opened = Runtime.open(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def admin(sandbox: dict[str, Any]) -> aws_fleet.Admin:
    aws = sandbox["providers"]["aws"]
    return aws_fleet.Admin(aws["endpoint_url"], aws["access_key_id"], aws["secret_access_key"])


@pytest.fixture(scope="session")
def vault(sandbox: dict[str, Any]) -> vault_fleet.Vault:
    info = sandbox["providers"]["vault"]
    return vault_fleet.Vault(info["addr"], info["root_token"])


@pytest.fixture(scope="session")
def gcp(sandbox: dict[str, Any]) -> gcp_fleet.Gcp:
    info = sandbox["providers"]["gcp"]
    return gcp_fleet.Gcp(info["grpc_target"], info["project"])


@pytest.fixture(scope="session")
def azure(sandbox: dict[str, Any]) -> azure_fleet.Azure:
    return azure_fleet.Azure(sandbox["providers"]["azure"])


@pytest.fixture(scope="session")
def plugins(sandbox: dict[str, Any], sandbox_home: Path) -> seeding.Seeding:
    """Every plug-in's seeder, attached to the session's sandbox."""
    return seeding.attach(sandbox["stand_ins"], sandbox["providers"], Paths.under(sandbox_home))


@pytest.fixture(scope="session")
def material_store(plugins: seeding.Seeding) -> Stores:
    """Where test seeding writes probe material: the keyring file and the plug-ins' stores
    (Vault KV), as the sandbox does."""
    store = plugins.sandbox.store
    assert isinstance(store, Stores)
    return store


@pytest.fixture(scope="session")
def keyring(settings: Settings) -> KeyringFile:
    assert settings.keyring_path is not None
    return KeyringFile(settings.keyring_path)


@pytest.fixture(scope="session")
def inventory(settings: Settings) -> Inventory:
    return Inventory(settings.inventory_file)


SeedAgent = Callable[..., str]


@pytest.fixture(scope="session")
def saas_url(sandbox: dict[str, Any]) -> str:
    """The root of the Slack/GitHub/OpenAI/Anthropic stand-ins."""
    return str(sandbox["stand_ins"]["saas"]["url"])  # direct: test control never faulted


@pytest.fixture
def seed_agent(plugins: seeding.Seeding) -> SeedAgent:
    """Seed a fresh agent with a unique id in every stand-in, the inventory and the stores.

    `seed_agent(prefix, status=…, only=(providers…), <provider>={its options})`, e.g.
    `seed_agent(aws={"users": (("runtime", 1),), "role": False}, only=("aws",))`."""

    def seed(
        prefix: str = "t",
        *,
        status: AgentStatus = AgentStatus.ACTIVE,
        only: Collection[str] | None = None,
        **options: Mapping[str, Any],
    ) -> str:
        agent_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        skip = frozenset(set(plugins.seeders) - set(only)) if only is not None else frozenset()
        spec = AgentSpec(
            agent_id, "test-owner", "test agent", status=status, options=options, skip=skip
        )
        fleet.seed_agent(plugins.sandbox, plugins.seeders, spec)
        return agent_id

    return seed


def seeded_counts(sandbox: dict[str, Any], agent_id: str = fleet.DEMO_AGENT) -> tuple[int, int]:
    """(credentials, grants) the sandbox seeded for an agent over every provider, by its own
    account (`agents[].seeded`); the demo agent's are what `seed_agent()` seeds."""
    [agent] = [a for a in sandbox["agents"] if a["id"] == agent_id]
    seeded = agent["seeded"].values()
    return sum(s["credentials"] for s in seeded), sum(s["grants"] for s in seeded)


def keyring_material(keyring: KeyringFile, kind: str, ref: str) -> dict[str, str]:
    """The first piece of probe material the keyring holds for `kind:ref` (plain strings)."""
    entries: dict[str, list[dict[str, str]]] = json.loads(keyring.path.read_text())["entries"]
    return entries[f"{kind}:{ref}"][0]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A real PostgreSQL for the session (the pgserver wheel's binaries), started on first
    use; each test asks `pg_url` for a database of its own. Not under pytest's basetemp: as
    root the cluster runs as `pgserver`, which must traverse the parents, and every pytest
    session resets pytest-of-root/ to 0700."""
    from killswitch.postgres import LocalPostgres

    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="killswitch-test-pg-")), durable=False)
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    return str(pg_cluster.ensure_database(f"t_{uuid.uuid4().hex[:12]}"))


InventoryAt = Callable[[str], Inventory]


@pytest.fixture(params=["sqlite", "postgres"])
def inventory_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InventoryAt]:
    """`inventory_at(host)`: the inventory as a process on `host` opens it — one SQLite file
    for every host (one host's processes), or one PostgreSQL database that hosts with
    nothing else in common share. Every test using it runs on both."""
    opened: list[Inventory] = []
    database: list[str] = []

    def at(host: str) -> Inventory:
        if request.param == "sqlite":
            made = Inventory(tmp_path / "inventory.db")
        else:
            from killswitch.inventory_postgres import PostgresInventory

            database[:] = database or [request.getfixturevalue("pg_url")]
            made = PostgresInventory(database[0], tmp_path / host / "inventory.db")
        opened.append(made)
        return made

    yield at
    for made in opened:
        made.close()
