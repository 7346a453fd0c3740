"""Dedup and the storm breaker keep their state in the inventory database: shared by
replicas (two handles on one SQLite file, or two hosts on one PostgreSQL) and kept across a
restart."""

from __future__ import annotations

from pathlib import Path

from killswitch.alerts.fingerprints import Fingerprints
from killswitch.alerts.guard import Dedup, SourceRate, StormBreaker
from killswitch.inventory import Inventory
from tests.conftest import InventoryAt


def test_the_same_alert_inside_the_window_is_one_run(inventory_at: InventoryAt) -> None:
    one, other = inventory_at("a"), inventory_at("b")
    assert Dedup(one, 60).first("aws:e-1", now=1000).first
    Dedup(one, 60).link("aws:e-1", "run-1")
    copy = Dedup(other, 60).first("aws:e-1", now=1030)  # another replica, same database
    assert not copy.first and copy.run_ids == ("run-1",)
    assert Dedup(other, 60).first("aws:e-1", now=1100).first  # the window passed


def test_the_breaker_contains_m_agents_then_holds_and_tells_once(
    inventory_at: InventoryAt,
) -> None:
    breaker = StormBreaker(inventory_at("a"), max_agents=2, window_s=600)
    assert breaker.admit("a", "r1", now=10).contain
    assert breaker.admit("a", "r1b", now=11).contain  # the same agent is not a second one
    assert breaker.admit("b", "r2", now=12).contain
    third = breaker.admit("c", "r3", now=13)
    fourth = breaker.admit("d", "r4", now=14)
    assert not third.contain and third.tell
    assert not fourth.contain and not fourth.tell  # one message per trip
    restarted = StormBreaker(inventory_at("b"), max_agents=2, window_s=600)
    assert restarted.state(now=15).tripped and not restarted.admit("a", "r5", now=15).contain
    restarted.resume("slack:U1", now=20)
    assert restarted.admit("e", "r6", now=21).contain  # counting starts afresh
    assert restarted.state(now=21).contained == 1


def test_a_source_over_its_rate_is_refused_per_minute() -> None:
    rate = SourceRate(2)
    assert rate.admit("aws", now=0) and rate.admit("aws", now=1)
    assert not rate.admit("aws", now=2)
    assert rate.admit("github", now=2)
    assert rate.admit("aws", now=61)


def test_fingerprints_find_the_credential_but_never_hold_the_secret(tmp_path: Path) -> None:
    inventory = Inventory(tmp_path / "i.db")
    known = Fingerprints(inventory, b"k" * 32, {"access_key_id"})
    known.add(
        "aws.access-key",
        "AKIA1",
        {"access_key_id": "AKIA1", "secret": "s3cr3t-canary"},
        agent_id="agent-1",
    )
    found = known.lookup("s3cr3t-canary")
    assert found is not None and found.agent_id == "agent-1" and found.key == "aws.access-key:AKIA1"
    assert found.material("s3cr3t-canary") == {"access_key_id": "AKIA1", "secret": "s3cr3t-canary"}
    assert known.lookup("AKIA1") is None  # identifiers are not fingerprinted
    assert Fingerprints(inventory, b"x" * 32, ()).lookup("s3cr3t-canary") is None  # keyed
    inventory.close()
    assert b"s3cr3t-canary" not in (tmp_path / "i.db").read_bytes()


def test_inventory_fingerprint_records_keyring_secrets_of_known_agents(tmp_path: Path) -> None:
    from killswitch.secrets import KeyringFile
    from tests.conftest import run_cli

    home = tmp_path / "home"
    keyring = tmp_path / "keyring.json"
    fleet = tmp_path / "agents.yaml"
    fleet.write_text(
        "agents:\n  - id: bot-1\n    owner: team-a\n    credentials:\n"
        "      - {provider: github, kind: github.token, ref: tok-1}\n"
    )
    env = {"KILLSWITCH_KEYRING_PATH": str(keyring)}
    assert run_cli(home, "inventory", "import", str(fleet), **env).returncode == 0
    KeyringFile(keyring).add("github.token", "tok-1", {"token": "ghp_canaryvalue0000000001"})
    KeyringFile(keyring).add("github.token", "tok-2", {"token": "ghp_canaryvalue0000000002"})
    done = run_cli(home, "inventory", "fingerprint", "--json", **env)
    assert done.returncode == 0, done.stderr
    assert '"recorded": 1' in done.stdout and '"unattributed": 1' in done.stdout
    assert "canaryvalue" not in done.stdout + done.stderr
    half = run_cli(home, "inventory", "fingerprint", "--agent", "bot-1", **env)
    assert half.returncode == 2 and "together" in half.stderr
