"""A fast subset of chaos/: three experiments through `chaos run` (the same files and
extension module `make chaos` uses), narrowed to a few providers, against the test
session's sandbox (`KILLSWITCH_CHAOS_HOME`: the experiment uses it, and leaves it running).
`make test` runs the quickest (Prefect down); the other two are marked `long` (`make
test-long`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHAOS = Path(__file__).resolve().parents[2] / "chaos"
sys.path.insert(0, str(CHAOS))
import run as chaos_run  # noqa: E402  (chaos/run.py: not part of the installed package)

pytest.importorskip("chaoslib", reason="the chaos extra (make chaos installs it)")


def run_experiment(
    name: str, home: Path, tmp_path: Path, **knobs: str
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    journal = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILLSWITCH_", "PREFECT_"))}
    env.update(PYTHONPATH=str(CHAOS), KILLSWITCH_CHAOS_HOME=str(home), **knobs)
    command = chaos_run.chaos_command(CHAOS / "experiments" / f"{name}.json", journal)
    command[command.index("--settings") + 1] = str(tmp_path / "settings.yaml")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert journal.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    verdict, checks, figures = chaos_run.result(json.loads(journal.read_text()))
    broken = [c for c in checks if not c["ok"]]
    assert verdict == "passed", (verdict, broken, done.stdout[-3000:])
    assert done.returncode == 0
    return verdict, checks, figures


@pytest.mark.long  # a minute or more here: `make test-long`, and `make chaos` runs it whole
def test_thirty_percent_faults_on_one_agent_every_credential_dead(
    sandbox: dict[str, Any], sandbox_home: Path, tmp_path: Path
) -> None:
    _, checks, figures = run_experiment(
        "transient-faults",
        sandbox_home,
        tmp_path,
        KILLSWITCH_CHAOS_PROVIDERS="aws,anthropic",
        KILLSWITCH_CHAOS_AGENTS="1",
    )
    assert any(c["name"] == "retries visible in the ledger" for c in checks)
    assert figures["faults"]["aws"]["faulted"] > 0
    assert figures["bystanders"]["alive"] == figures["bystanders"]["credentials"] > 0


@pytest.mark.long  # as above
def test_one_provider_down_is_named_unknown_and_the_others_dead(
    sandbox: dict[str, Any], sandbox_home: Path, tmp_path: Path
) -> None:
    _, checks, figures = run_experiment(
        "provider-down",
        sandbox_home,
        tmp_path,
        KILLSWITCH_CHAOS_PROVIDERS="vault,anthropic",
        KILLSWITCH_CHAOS_PROXIES="vault",
    )
    [turn] = figures["turns"]
    assert turn["proxy"] == "vault" and turn["exit"] == 1 and turn["unknown"] > 0
    assert any(c["name"].endswith("each credential behind it named unknown") for c in checks)


def test_prefect_down_is_exit_3_and_break_glass_proves_all(
    sandbox: dict[str, Any], sandbox_home: Path, tmp_path: Path
) -> None:
    _, checks, _ = run_experiment(
        "prefect-down", sandbox_home, tmp_path, KILLSWITCH_CHAOS_PROVIDERS="anthropic"
    )
    assert {"prefect down: exit 3", "break-glass: every credential dead"} <= {
        c["name"] for c in checks
    }
