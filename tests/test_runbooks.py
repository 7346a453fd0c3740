"""Every command in the runbooks runs, in a sandbox of its own, with the exit code it shows.

Runbook convention: commands for an operator sit in ```console blocks as `$ killswitch ...`
lines; a trailing `# exit N` says the command is expected to exit N (default 0). The files
run in the order of runbooks/README.md, one narrative: sandbox up, contain, restore, audit;
the provider pages follow.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def ordered_runbooks() -> list[Path]:
    """The pages runbooks/README.md lists, in its order, then every provider page."""
    index = (RUNBOOKS / "README.md").read_text()
    names = re.findall(r"\]\(([\w/.-]+\.md)\)", index)
    listed = [RUNBOOKS / n for n in names]
    providers = sorted((RUNBOOKS / "providers").glob("*.md"))
    every = sorted(p for p in RUNBOOKS.rglob("*.md") if p.name != "README.md")
    assert sorted(listed + providers) == every, "runbooks/README.md must list every runbook"
    return listed + providers


def commands(path: Path) -> list[tuple[list[str], int]]:
    found = []
    for block in BLOCK.findall(path.read_text()):
        for line in block.splitlines():
            if not line.startswith("$ "):
                continue
            command, _, comment = line[2:].partition("  # ")
            expected = re.search(r"exit (\d+)", comment)
            argv = shlex.split(command)
            assert argv[0] == "killswitch", f"{path.name}: only killswitch commands run: {line}"
            found.append((argv[1:], int(expected.group(1)) if expected else 0))
    return found


def test_every_runbook_command_runs_as_shown(tmp_path: Path) -> None:
    home = tmp_path / "runbook-home"
    ran = 0
    try:
        for path in ordered_runbooks():
            for argv, expected in commands(path):
                done = run_cli(home, *argv, timeout=300)
                assert done.returncode == expected, (
                    f"{path.relative_to(ROOT)}: `killswitch {' '.join(argv)}` exited "
                    f"{done.returncode}, the runbook says {expected}\n{done.stdout}\n{done.stderr}"
                )
                ran += 1
    finally:
        run_cli(home, "sandbox", "down")
    assert ran >= 10
