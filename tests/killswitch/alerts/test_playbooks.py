"""The playbook language: the shipped defaults load, every broken file is refused with its
file:line through the real CLI (exit 2, nothing loaded), the schema is the models'."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from killswitch.alerts import playbooks
from killswitch.alerts.models import Alert
from tests.conftest import run_cli

GOOD = """\
- name: aws-exposed-key
  match: {source: aws, event: AWS_RISK_CREDENTIALS_EXPOSED}
  do: contain
  guards: {max_agents: 1, environments: [prod, staging]}
- name: guardduty-high
  match: {source: aws, finding_type: "UnauthorizedAccess:IAMUser/*", min_severity: 7}
  do: ask
"""


def alert(**fields: object) -> Alert:
    base: dict[str, object] = dict(
        source="aws",
        alert_id="e-1",
        event="GuardDuty Finding",
        finding_type=None,
        severity=None,
        agent_id=None,
        environment=None,
        credentials=(),
        summary="s",
        received_at=datetime.now(UTC),
    )
    base.update(fields)
    return Alert(**base)  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_the_shipped_playbooks_are_valid_and_cover_every_source() -> None:
    book = playbooks.load(playbooks.default_directory())
    covered = {e.playbook.match.source for e in book.entries}
    assert covered == set(playbooks.SOURCES)
    assert all(e.playbook.do != "destroy" for e in book.entries)


def test_first_match_wins_and_every_field_must_hold(tmp_path: Path) -> None:
    book = playbooks.load(write(tmp_path, "a.yaml", GOOD))
    exposed = alert(event="AWS_RISK_CREDENTIALS_EXPOSED")
    assert (found := book.match(exposed)) is not None and found.playbook.name == "aws-exposed-key"
    assert found.where == f"{tmp_path / 'a.yaml'}:1"
    high = alert(finding_type="UnauthorizedAccess:IAMUser/MaliciousIPCaller", severity=8)
    assert (found := book.match(high)) is not None and found.playbook.name == "guardduty-high"
    assert book.match(alert(finding_type="UnauthorizedAccess:IAMUser/X", severity=5)) is None
    assert book.match(alert(source="sns", event="AWS_RISK_CREDENTIALS_EXPOSED")) is None
    assert book.match(alert(finding_type="UnauthorizedAccess:IAMUser/X")) is None  # no severity


BROKEN = {
    "bad YAML": ("- name: x\n  match: {source: aws\n", "bad.yaml:3", "not valid YAML"),
    "unknown action": (
        "- name: x\n  match: {source: aws}\n  do: explode\n",
        "bad.yaml:3",
        "do: Input should be 'contain', 'ask' or 'notify'",
    ),
    "destroy": (
        "- name: x\n  match: {source: aws}\n  do: destroy\n",
        "bad.yaml:3",
        "never an alert action",
    ),
    "unknown field": (
        "- name: x\n  match: {source: aws, severity: 3}\n  do: ask\n",
        "bad.yaml:2",
        "match.severity: Extra inputs are not permitted",
    ),
    "bad glob": (
        "- name: x\n  do: ask\n  match:\n    source: aws\n    finding_type: 'Recon:[IAM'\n",
        "bad.yaml:5",
        "a '[' is never closed",
    ),
    "unknown source": (
        "- name: x\n  match: {source: pagerduty}\n  do: ask\n",
        "bad.yaml:2",
        "match.source",
    ),
    "twice": (
        "- name: x\n  match: {source: aws}\n  do: ask\n- name: x\n  match: {source: aws}\n"
        "  do: notify\n",
        "bad.yaml:4",
        "defined twice",
    ),
    "not a list": ("name: x\n", "bad.yaml:1", "expected a list of playbooks"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_refuses_each_broken_file_with_its_line(tmp_path: Path, case: str) -> None:
    text, where, said = BROKEN[case]
    directory = write(tmp_path, "bad.yaml", text)
    write(tmp_path, "good.yaml", GOOD.replace("aws-exposed-key", "other"))
    done = run_cli(tmp_path, "playbook", "validate", str(directory))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{tmp_path}/{where}" in done.stderr and said in done.stderr, done.stderr
    with pytest.raises(playbooks.PlaybookError):
        playbooks.load(directory)  # nothing is loaded when one file is wrong


def test_validate_lists_a_good_directory_and_schema_is_the_models(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "playbook", "validate", str(write(tmp_path, "a.yaml", GOOD)), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["playbooks"] == ["aws-exposed-key", "guardduty-high"]
    shown = run_cli(tmp_path, "playbook", "schema")
    assert shown.returncode == 0, shown.stderr
    schema = json.loads(shown.stdout)
    assert schema["type"] == "array" and "Playbook" in schema["$defs"]
    assert schema["$defs"]["Playbook"]["additionalProperties"] is False
    assert set(schema["$defs"]["Match"]["properties"]["source"]["enum"]) == set(playbooks.SOURCES)
