"""A ninth provider takes one registration line: the core plans, runs, reports and
restores it without a change (`tests/revokers/acme` is the provider; it never ships)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from killswitch import engine, pipeline, restoration
from killswitch.errors import ConfigurationError
from killswitch.models import Agent, AgentStatus, CredentialRef, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.secrets import KeyringFile
from killswitch.settings import load_settings, settings_model
from revokers import registry
from tests.revokers.acme import stand_in


@pytest.fixture
def acme_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The one registration line, for the length of a test."""
    monkeypatch.setattr(registry, "PACKAGES", (*registry.PACKAGES, "tests.revokers.acme"))
    registry.plugins.cache_clear()
    settings_model.cache_clear()
    yield
    registry.plugins.cache_clear()
    settings_model.cache_clear()


def profile(tmp_path: Path, **acme: object) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(
        json.dumps(
            {
                "home": str(tmp_path),
                "keyring_path": str(tmp_path / "keyring.json"),
                "probe_deadline_s": 2.0,
                "probe_interval_s": 0.05,
                "acme": acme,
            }
        )
    )
    return path


def test_the_shipped_registry_does_not_know_acme() -> None:
    assert "acme" not in {p.name for p in registry.plugins()}


def test_a_registered_provider_gets_a_strict_settings_section(
    acme_registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(profile(tmp_path, base_url="http://127.0.0.1:9"))
    assert settings.providers == ("acme",)  # the providers with a section in the profile
    assert settings.acme.base_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="acme.protected_tokenz"):
        load_settings(profile(tmp_path, protected_tokenz=["t-1"]))
    monkeypatch.setenv("KILLSWITCH_ACME__BASE_URL", "http://127.0.0.1:10")
    assert load_settings(profile(tmp_path)).acme.base_url == "http://127.0.0.1:10"  # type: ignore[attr-defined]


def test_contain_prove_and_restore_a_ninth_provider(acme_registered: None, tmp_path: Path) -> None:
    settings = load_settings(profile(tmp_path, protected_tokens=["t-kept"]))
    runtime = Runtime.open(settings)
    try:
        runtime.inventory.upsert_agent(Agent("agent-9", "team-9", AgentStatus.ACTIVE))
        runtime.inventory.declare("agent-9", CredentialRef("acme", "acme.token", "t-1"))
        keyring = KeyringFile(tmp_path / "keyring.json")
        for token in ("t-1", "t-2", "t-kept"):
            stand_in.mint("agent-9", token, f"acme-secret-{token}")
            keyring.add("acme.token", token, {"token_id": token, "secret": f"acme-secret-{token}"})

        report = pipeline.contain(
            runtime, Request("agent-9", "drill", "test", mode=Mode.BREAK_GLASS)
        )

        verdicts = {c.credential.ref: c.verdict for c in report.credentials}
        assert report.ok and set(verdicts) == {"t-1", "t-2"}
        assert verdicts["t-1"].status is VerdictStatus.DEAD
        assert verdicts["t-1"].evidence == (
            "401 token_revoked; baseline: authenticated before containment"
        )
        # Protected: never in the plan, still working.
        assert report.plan.protected_skipped == ("acme.token t-kept",)
        assert stand_in.authenticate("acme-secret-t-kept") == "200 ok"
        assert runtime.ledger.verify().ok
        restored = restoration.restore(
            runtime, Request("agent-9", "false positive", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.ok and stand_in.authenticate("acme-secret-t-1") == "200 ok"
    finally:
        runtime.close()


def test_a_credential_minted_after_the_plan_is_named_not_hidden(
    acme_registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan shown on a button runs as shown; what appeared since is reported `unknown`."""
    monkeypatch.setattr(engine, "STALE_PLAN_S", 0.0)  # as if the button waited a while
    settings = load_settings(profile(tmp_path))
    runtime = Runtime.open(settings)
    try:
        runtime.inventory.upsert_agent(Agent("agent-10", "team-10", AgentStatus.ACTIVE))
        keyring = KeyringFile(tmp_path / "keyring.json")
        stand_in.mint("agent-10", "t-10", "acme-secret-t-10")
        keyring.add("acme.token", "t-10", {"token_id": "t-10", "secret": "acme-secret-t-10"})
        request = Request("agent-10", "leak", "test", mode=Mode.BREAK_GLASS)
        plan = pipeline.plan(runtime, request)
        stand_in.mint("agent-10", "t-late", "acme-secret-t-late")  # the attacker's new one

        report = pipeline.run(runtime, plan.run_id)

        verdicts = {c.credential.ref: c.verdict for c in report.credentials}
        assert verdicts["t-10"].status is VerdictStatus.DEAD
        assert verdicts["t-late"].status is VerdictStatus.UNKNOWN
        assert "appeared after the plan" in verdicts["t-late"].evidence
        assert not report.ok  # the run says so loudly: exit 1, page
        assert stand_in.authenticate("acme-secret-t-late") == "200 ok"  # the plan ran as shown
    finally:
        runtime.close()
