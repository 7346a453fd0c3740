"""Probes: the steady-state hypothesis of every experiment, and its findings for the table.

Each hypothesis probe returns a bool (tolerance `true`): before the method it shows the
sandbox is a sound starting point, after it that the kill switch's guarantees held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from killswitch_chaos import lab


def ledger_verifies() -> bool:
    """`killswitch audit verify` exits 0: the hash chain is intact."""
    verified = lab().cli("audit", "verify", "--json")
    return verified.code == 0


def no_canary_in_outputs() -> bool:
    """No seeded secret appears in anything a command printed, in the ledger's export, or in
    any file the sandbox wrote (the keyring itself aside)."""
    current = lab()
    exported = current.cli("audit", "export")
    secrets = current.canaries()
    if not secrets:
        return False  # nothing to look for would make the check vacuous
    texts = list(current.outputs) + [exported.stdout]
    leaked = [s for s in secrets if any(s in text for text in texts)]
    keyring = Path(current.status["keyring"])
    root = Path(current.status["dir"])
    leaked += _secrets_in_files(root, keyring, secrets)
    if leaked:
        current.check("no canary secret in any output", False, f"{len(set(leaked))} leaked")
    return not leaked


# Read in a child process: this one may hold the sandbox's SQLite databases open, and
# closing any other descriptor of such a file drops the process's POSIX locks on it (SQLite's
# "how to corrupt a database": the next open here met "database disk image is malformed").
_SCAN = """
import json, sys
from pathlib import Path
job = json.load(sys.stdin)
keyring, secrets = Path(job["keyring"]), [s.encode() for s in job["secrets"]]
found = []
for path in Path(job["root"]).rglob("*"):
    if path.is_file() and path != keyring and path.stat().st_size < 64 * 1024 * 1024:
        blob = path.read_bytes()
        found += [i for i, s in enumerate(secrets) if s in blob]
json.dump(found, sys.stdout)
"""


def _secrets_in_files(root: Path, keyring: Path, secrets: list[str]) -> list[str]:
    """The secrets found in any file under `root` but the keyring (read by a child)."""
    job = json.dumps({"root": str(root), "keyring": str(keyring), "secrets": secrets})
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _SCAN], input=job, capture_output=True, text=True, check=True
    )
    return [secrets[i] for i in json.loads(done.stdout)]  # indexes: no secret printed back


def bystanders_alive() -> bool:
    """Every credential of the agents outside the experiment still authenticates (one live
    probe each, with the kill switch's own probes): nothing spilled over."""
    current = lab()
    alive, dead = probe_agents(current.bystanders)
    figures = current.figures.setdefault("bystanders", {})
    figures.update(credentials=alive + dead, alive=alive)
    return dead == 0 and alive > 0


def probe_agents(agents: list[str]) -> tuple[int, int]:
    """(credentials that authenticate, credentials that do not) over `agents`."""
    from killswitch.engine import discover
    from killswitch.errors import KillSwitchError
    from killswitch.execution import materials_for
    from killswitch.models import VerdictStatus
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings
    from killswitch.verdicts import check_alive

    current = lab()
    runtime = Runtime.open(load_settings(profile=Path(current.status["profile"])))
    alive = not_alive = 0
    try:
        for agent_id in agents:
            agent = runtime.inventory.get_agent(agent_id)
            assert agent is not None, agent_id  # noqa: S101
            for name, found in discover(runtime, agent).items():
                if isinstance(found, KillSwitchError):
                    not_alive += 1
                    continue
                revoker = runtime.revokers[name]
                for credential in found.credentials:
                    materials = materials_for(revoker, runtime.secrets, credential)
                    if not materials:
                        continue
                    verdict = check_alive(
                        revoker, credential, materials, deadline_s=0.0, interval_s=0.0
                    )
                    if verdict.status is VerdictStatus.ALIVE:
                        alive += 1
                    else:
                        not_alive += 1
    finally:
        runtime.close()
    return alive, not_alive


def invariants_hold() -> bool:
    """Every invariant the method's actions checked held (none checked yet: true)."""
    return all(c.ok for c in lab().checks)


def findings() -> dict[str, Any]:
    """What the method saw, for the journal and the results table (never secret material)."""
    current = lab()
    return {
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in current.checks],
        "figures": json.loads(json.dumps(current.figures, default=str)),
    }
