"""Every registered revoker honours the contract: verbs, permissions, stand-in, runbook, tests."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from revokers.base import VERBS, Revoker, registered
from revokers.registry import plugin

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = sorted(registered())


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
    assert cls.provider == name
    found = plugin(name)
    assert found is not None and importlib.util.find_spec(found.stand_in), f"{name}: no stand-in"
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
