"""Finding the plug-ins through the revoker registry, and what the core derives from them."""

from __future__ import annotations

from typer.testing import CliRunner

from killswitch.cli.sandbox import app
from killswitch.sandbox.daemon import merge
from killswitch.sandbox.plugins import fault_targets, loaded
from revokers.base import registered


def test_every_registered_provider_has_a_plug_in() -> None:
    assert sorted(loaded()) == sorted(registered())


def test_fault_help_lists_every_proxy_and_the_providers_behind_it() -> None:
    targets = fault_targets()
    assert targets and all(targets.values())
    shown = CliRunner().invoke(app, ["fault", "--help"], env={"COLUMNS": "300"}).output
    for proxy, providers in targets.items():
        assert proxy in shown
        assert all(p in shown for p in providers)
    behind = {p for providers in targets.values() for p in providers}
    direct = {n for n, plugin in loaded().items() if plugin.fault_target is None}
    assert behind | direct == set(registered())


def test_plug_ins_share_the_shared_apps_entry_key_by_key() -> None:
    stand_ins: dict[str, object] = {"saas": {"url": "u", "admin_keys": {}}}
    merge(stand_ins, {"saas": {"admin_keys": {"a": "1"}}})
    merge(stand_ins, {"saas": {"admin_keys": {"b": "2"}}, "moto": {"url": "m"}})
    assert stand_ins == {
        "saas": {"url": "u", "admin_keys": {"a": "1", "b": "2"}},
        "moto": {"url": "m"},
    }
