"""`killswitch inventory import | discover | list | fingerprint`: the declared fleet, what
providers hold, and the fingerprints that trace a leaked value to its agent."""

from __future__ import annotations

import uuid
from pathlib import Path

import typer

from killswitch.cli.common import (
    EXIT_NOT_PROVEN,
    EXIT_OK,
    JSON,
    QUIET,
    emit_json,
    err,
    errors_handled,
    out,
    progress_to_stderr,
)
from killswitch.cli.common import actor as current_actor

app = typer.Typer(
    help="The inventory: the declared fleet (import), what providers hold (discover), list.",
    no_args_is_help=True,
)


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="agents.yaml: `agents:` with id, owner, credentials…"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and show what would change; write nothing."
    ),
    as_json: bool = JSON,
) -> None:
    """Import the declared fleet. Every malformed entry is reported with its line, and
    nothing is imported unless the whole file is valid (exit 2). Only what the file states
    changes: a lifecycle status it leaves out stays; protected agents are refused."""
    from killswitch import fleet_file
    from killswitch.inventory import open_inventory
    from killswitch.ledger import Entry
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings
    from revokers.base import registered

    with errors_handled(as_json):
        settings = load_settings()
        kinds = {
            name: (*cls.credential_kinds, *cls.principal_kinds)
            for name, cls in registered().items()
        }
        entries = fleet_file.load(path, kinds, protected=settings.protected_agents)
        if dry_run:
            inventory = None
            if settings.database or settings.inventory_file.exists():
                inventory = open_inventory(settings)
            try:
                changes = fleet_file.plan(inventory, entries)
            finally:
                if inventory is not None:
                    inventory.close()
            result = fleet_file.Imported(
                len(entries),
                sum(len(e.credentials) for e in entries),
                tuple(c.agent for c in changes if c.change == "created"),
                tuple(changes),
            )
        else:
            runtime = Runtime.open(settings, providers=[])
            try:
                result = fleet_file.apply(runtime.inventory, entries)
                runtime.ledger.append(
                    Entry(
                        run_id=uuid.uuid4().hex,
                        actor=current_actor(),
                        trigger="cli",
                        agent="",
                        action="inventory.import",
                        outcome="ok",
                        detail={
                            "file": str(path),
                            "agents": result.agents,
                            "credentials": result.credentials,
                            "new_agents": list(result.new_agents),
                            "changed": {
                                c.agent: {f: {"old": o, "new": n} for f, o, n in c.fields}
                                for c in result.changes
                                if c.change == "changed"
                            },
                        },
                    )
                )
            finally:
                runtime.close()
    summary = {
        "ok": True,
        "dry_run": dry_run,
        "agents": result.agents,
        "credentials": result.credentials,
        "new_agents": list(result.new_agents),
        "changes": [
            {
                "agent": c.agent,
                "change": c.change,
                "fields": {f: {"old": o, "new": n} for f, o, n in c.fields},
                "new_credentials": c.new_credentials,
            }
            for c in result.changes
        ],
    }
    if as_json:
        emit_json(summary)
        return
    from rich.markup import escape

    for c in result.changes:
        fields = ", ".join(f"{f} {o!r} → {n!r}" for f, o, n in c.fields)
        refs = f" (+{c.new_credentials} credential reference(s))" if c.new_credentials else ""
        out.print(escape(f"{c.agent}: {c.change}" + (f" {fields}" if fields else "") + refs))
    verb = "valid: would import" if dry_run else "imported"
    out.print(
        escape(
            f"{path}: {verb} {result.agents} agent(s), {result.credentials} credential "
            "reference(s)" + (f"; new: {', '.join(result.new_agents)}" if result.new_agents else "")
        )
    )


@app.command()
def discover(
    provider: list[str] = typer.Option(
        [],
        "--provider",
        "-p",
        help="Only this provider (repeatable). Default: every one that can list.",
    ),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Enumerate every NHI each provider holds (paginated, streamed into the inventory) and
    reconcile: NHIs no longer at the provider are dropped. Slack and GitHub cannot list
    their tokens: the inventory's declarations are what is known of them."""
    from killswitch import sweep
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings

    with errors_handled(as_json), progress_to_stderr(quiet):
        settings = load_settings()
        runtime = Runtime.open(settings)
        try:
            unknown = [p for p in provider if p not in runtime.revokers]
            if unknown:
                from killswitch.errors import ConfigurationError

                raise ConfigurationError(
                    f"unknown or unconfigured provider(s) {', '.join(unknown)}; configured: "
                    + ", ".join(runtime.revokers)
                )
            skipped = [p for p in provider if not runtime.revokers[p].enumerable]
            recorded, errors = sweep.discover(runtime, uuid.uuid4().hex, provider)
        finally:
            runtime.close()
    result = {
        "ok": not errors,
        "target": settings.target,
        "providers": [
            {"provider": r.provider, "seen": r.seen, "new": r.new, "gone": r.gone} for r in recorded
        ],
        "not_enumerable": skipped,
        "errors": errors,
    }
    if as_json:
        emit_json(result)
    else:
        for r in recorded:
            out.print(f"{r.provider}: {r.seen} NHIs ({r.new} new, {r.gone} gone since last time)")
        for name in skipped:
            out.print(f"{name}: cannot list its credentials; the inventory's declarations stand")
        for error in errors:
            err.print(f"[bold red]error[/]: {error}")
    raise typer.Exit(EXIT_OK if not errors else EXIT_NOT_PROVEN)


@app.command("list")
def list_(
    agent: str = typer.Option(None, "--agent", help="Only this agent, with its NHIs."),
    as_json: bool = JSON,
) -> None:
    """The agents the inventory knows: status, owner, expiry, declared credentials, and the
    NHIs discovery attributed to each."""
    from killswitch.codec import agent_to_dict, nhi_to_dict
    from killswitch.errors import UnknownAgentError
    from killswitch.inventory import open_inventory
    from killswitch.settings import load_settings
    from killswitch.sightings import Sightings

    with errors_handled(as_json):
        settings = load_settings()
        inventory = open_inventory(settings)
        agents = [a for a in inventory.list_agents() if agent is None or a.id == agent]
        if agent is not None and not agents:
            raise UnknownAgentError(f"agent {agent!r} is not in the inventory")
        declared_by = inventory.declared_by()
        seen: dict[str, list[dict[str, object]]] = {}
        for nhi in Sightings(inventory).nhis():
            owners = {nhi.agent_tag, *declared_by.get((nhi.kind, nhi.ref), ())} - {""}
            for owner in owners:
                if agent is None or owner == agent:
                    seen.setdefault(owner, []).append(nhi_to_dict(nhi))
        rows = [
            {
                **agent_to_dict(a),
                "declared": [f"{c.kind}:{c.ref}" for c in inventory.declared(a.id)],
                "protected": a.id in settings.protected_agents,
                "discovered": seen.get(a.id, []) if agent is not None else len(seen.get(a.id, [])),
            }
            for a in agents
        ]
        inventory.close()
    if as_json:
        emit_json({"target": settings.target, "agents": rows})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"agents ({settings.target})")
    for column in ("id", "owner", "status", "expires", "protected", "declared", "discovered"):
        table.add_column(column)
    for row in rows:
        found = row["discovered"]
        table.add_row(
            escape(str(row["id"])),
            escape(str(row["owner"])),
            str(row["status"]),
            str(row["expires_at"] or "")[:10],
            "yes" if row["protected"] else "",
            str(len(row["declared"])),
            str(len(found) if isinstance(found, list) else found),
        )
    out.print(table)
    if agent is not None and rows and isinstance(rows[0]["discovered"], list):
        nhis = Table(title=f"NHIs of {agent} seen by discovery")
        for column in ("provider", "kind", "ref", "works", "created", "last used"):
            nhis.add_column(column, overflow="fold")
        for nhi in rows[0]["discovered"]:
            nhis.add_row(
                str(nhi["provider"]),
                str(nhi["kind"]),
                escape(str(nhi["ref"])),
                "yes" if nhi["works"] else "no",
                str(nhi["created_at"] or "")[:10],
                str(nhi["last_used_at"] or "never")[:10],
            )
        out.print(nhis)


@app.command()
def fingerprint(
    agent: str = typer.Option(None, "--agent", help="With --kind, --ref, --field: one secret."),
    kind: str = typer.Option(None, "--kind", help="Its credential kind (<provider>.<thing>)."),
    ref: str = typer.Option(None, "--ref", help="Its reference (key id, token id)."),
    field: str = typer.Option(None, "--field", help="Its probe-material field (e.g. token)."),
    as_json: bool = JSON,
) -> None:
    """Record keyed fingerprints of known secrets, so a leaked value in an alert finds its
    agent: every entry of the keyring file whose credential the inventory can attribute, or
    one secret read from stdin (`--agent --kind --ref --field`; never an argument). The
    secrets themselves are never stored."""
    import sys

    from killswitch.alerts import fingerprints
    from killswitch.errors import RefusedError, UnknownAgentError
    from killswitch.guards import validate_agent_id
    from killswitch.inventory import open_inventory
    from killswitch.secrets import KeyringFile
    from killswitch.settings import load_settings
    from killswitch.sightings import Sightings

    with errors_handled(as_json):
        settings = load_settings()
        inventory = open_inventory(settings)
        known = fingerprints.opened(settings, inventory)
        one = (agent, kind, ref, field)
        if any(one) and not all(one):
            raise RefusedError("one secret needs --agent, --kind, --ref and --field together")
        recorded, unattributed = 0, 0
        if all(one):
            if inventory.get_agent(validate_agent_id(agent)) is None:
                raise UnknownAgentError(f"agent {agent!r} is not in the inventory")
            value = sys.stdin.readline().strip()
            if not value:
                raise RefusedError("no secret on stdin")
            known.add(kind, ref, {field: value}, agent_id=agent)
            recorded = 1
        elif settings.keyring_path is not None:
            declared = inventory.declared_by()
            sightings = Sightings(inventory)
            keyring = KeyringFile(settings.keyring_path)
            for key in keyring.keys():
                kind_, _, ref_ = key.partition(":")
                owners = declared.get((kind_, ref_)) or [
                    n.agent_tag for n in sightings.by_ref(ref_) if n.kind == kind_ and n.agent_tag
                ]
                if not owners:
                    unattributed += 1
                    continue
                for material in keyring.entries(key):
                    known.add(kind_, ref_, material, agent_id=owners[0])
                recorded += 1
        total = known.count()
        inventory.close()
    if as_json:
        emit_json({"recorded": recorded, "unattributed": unattributed, "fingerprints": total})
        return
    out.print(
        f"fingerprinted {recorded} credentials ({unattributed} in the keyring with no agent the "
        f"inventory knows); {total} fingerprints in all"
    )
