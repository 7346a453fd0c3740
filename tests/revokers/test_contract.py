"""Every registered revoker honours the contract: verbs, permissions, stand-in, runbook, tests."""

from __future__ import annotations

import importlib
import inspect
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from killswitch.sandbox.plugin import StandIn
from revokers.base import VERBS, Revoker, registered

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = sorted(registered())
# The sandbox core: every module of killswitch/sandbox/ but the providers' own, and its CLI.
SANDBOX_CORE = sorted(
    [p for p in (ROOT / "killswitch" / "sandbox").glob("*.py") if p.stem not in PROVIDERS]
    + [ROOT / "killswitch" / "cli" / "sandbox.py"]
)
# (file name, provider) -> why that core module may name that provider. Keep it empty.
NAMING_EXEMPT: dict[tuple[str, str], str] = {}


def test_something_is_registered() -> None:
    assert "aws" in PROVIDERS


@pytest.mark.parametrize("name", PROVIDERS)
def test_revoker_implements_every_verb(name: str) -> None:
    cls = registered()[name]
    assert issubclass(cls, Revoker) and not inspect.isabstract(cls)
    assert cls.provider == name
    assert cls.credential_kinds and all(k.startswith(f"{name}.") for k in cls.credential_kinds)
    assert all(k.startswith(f"{name}.") for k in cls.grant_kinds)


@pytest.mark.parametrize("name", PROVIDERS)
def test_revoker_declares_permissions_for_every_verb(name: str) -> None:
    cls = registered()[name]
    assert set(VERBS) <= set(cls.permissions), f"{name} lacks permissions for some verbs"
    policy = cls.permission_policy()
    assert policy, f"{name} prints no permission policy"


@pytest.mark.parametrize("name", PROVIDERS)
def test_revoker_has_a_stand_in_a_runbook_page_and_tests(name: str) -> None:
    cls = registered()[name]
    assert cls.stand_in.startswith("killswitch.sandbox."), f"{name}: {cls.stand_in}"
    plugin = getattr(importlib.import_module(cls.stand_in), "STAND_IN", None)
    assert plugin is not None, f"{name}: {cls.stand_in} exposes no STAND_IN"
    members = [m for m in vars(StandIn) if not m.startswith("_")]
    assert members, "the protocol lists no members: the check is wrong"
    for member in members:
        wanted = getattr(StandIn, member)
        assert hasattr(plugin, member), f"{name}: STAND_IN has no {member}"
        if callable(wanted):
            expected = list(inspect.signature(wanted).parameters)[1:]  # without self
            assert list(inspect.signature(getattr(plugin, member)).parameters) == expected
    assert (ROOT / "runbooks" / "providers" / f"{name}.md").is_file(), f"{name}: no runbook page"
    assert (ROOT / "tests" / "revokers" / f"test_{name}.py").is_file(), f"{name}: no tests"


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def test_every_aws_call_the_revoker_makes_is_a_declared_permission() -> None:
    """Like Cloud Custodian's meta-test: an undeclared API call fails here, not in production."""
    declared = {p for perms in registered()["aws"].permissions.values() for p in perms}
    source = "\n".join(p.read_text() for p in (ROOT / "revokers" / "aws").glob("*.py"))
    calls = set(re.findall(r"\b(?:iam|admin|sts)\.([a-z_]+)\(", source))
    calls |= set(re.findall(r'get_paginator\(\s*"([a-z_]+)"', source))
    calls -= {"get_paginator"}
    assert calls, "the scan found no calls: the pattern is wrong"
    service = {name: "sts" if name == "get_caller_identity" else "iam" for name in calls}
    # IAM spells some acronyms in capitals (ListMFADevices): compare without case.
    folded = {p.casefold() for p in declared}
    missing = {
        f"{service[c]}:{_camel(c)}"
        for c in calls
        if f"{service[c]}:{_camel(c)}".casefold() not in folded
    }
    assert not missing, f"calls without a declared permission: {sorted(missing)}"


def _segments(path: Path) -> Iterator[tuple[int, str]]:
    """(line, word) of every identifier segment (snake and camel case) and every word of a
    string literal (docstrings and f-strings too) in a module."""
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NAME:
            for part in token.string.split("_"):
                for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", part):
                    yield token.start[0], word
        elif token.type == tokenize.STRING:
            for word in re.findall(r"[A-Za-z0-9]+", token.string):
                yield token.start[0], word


def test_the_sandbox_core_names_no_provider() -> None:
    """Providers live in their plug-ins: the core finds them through the registry only."""
    assert len(SANDBOX_CORE) > 5, "the scan found no core modules: the glob is wrong"
    names = {p.casefold() for p in PROVIDERS}
    named = [
        f"{path.relative_to(ROOT)}:{line}: {word}"
        for path in SANDBOX_CORE
        for line, word in _segments(path)
        if word.casefold() in names and (path.name, word.casefold()) not in NAMING_EXEMPT
    ]
    assert not named, "provider names in the sandbox core:\n" + "\n".join(named)


def test_the_naming_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "core.py"
    module.write_text('"""Starts moto."""\nURL = f"{base}/gcp/token"\nclass VaultServer: ...\n')
    assert {w for _, w in _segments(module)} >= {"gcp", "Vault", "moto"}
