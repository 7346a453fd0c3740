"""Every registered revoker honours the contract: verbs, permissions, stand-in, runbook, tests."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import io
import re
import tokenize
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from killswitch.sandbox.plugin import StandIn
from revokers.base import VERBS, Revoker, registered
from revokers.registry import plugin

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = sorted(registered())
# The sandbox core: every module of killswitch/sandbox/ but the providers' own, and its CLI.
# (`senders`, `alert_demo`: the alert senders, named after theirs — see ALERT_SOURCES.)
SANDBOX_CORE = sorted(
    [
        p
        for p in (ROOT / "killswitch" / "sandbox").glob("*.py")
        if p.stem not in PROVIDERS and p.stem not in ("senders", "alert_demo")
    ]
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
    assert cls.provider == name
    found = plugin(name)
    assert found is not None and found.stand_in.startswith("killswitch.sandbox."), name
    stand_in = getattr(importlib.import_module(found.stand_in), "STAND_IN", None)
    assert stand_in is not None, f"{name}: {found.stand_in} exposes no STAND_IN"
    members = [m for m in vars(StandIn) if not m.startswith("_")]
    assert members, "the protocol lists no members: the check is wrong"
    for member in members:
        wanted = getattr(StandIn, member)
        assert hasattr(stand_in, member), f"{name}: STAND_IN has no {member}"
        if callable(wanted):
            expected = list(inspect.signature(wanted).parameters)[1:]  # without self
            assert list(inspect.signature(getattr(stand_in, member)).parameters) == expected
    page = ROOT / "runbooks" / "providers" / f"{name}.md"
    assert page.is_file(), f"{name}: no runbook page"
    assert "## What the sandbox does not show" in page.read_text(), f"{name}: gaps unsaid"
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


@pytest.mark.parametrize("name", PROVIDERS)
def test_provider_settings_are_frozen_and_refuse_unknown_fields(name: str) -> None:
    found = plugin(name)
    assert found is not None
    model = found.settings
    assert model.model_config.get("extra") == "forbid", f"{name}: unknown fields pass"
    assert model.model_config.get("frozen"), f"{name}: settings can change after parsing"
    with pytest.raises(ValidationError):
        model.model_validate({"protected_principalz": ["x"]})


# The on-call entry point is a Slack *app* (slash command, buttons, sweep notices): these
# modules name Slack as the chat surface they serve, never as the provider whose tokens the
# Slack revoker kills.
SLACK_APP = {
    "killswitch/slack_app/": "the on-call Slack app",
    "killswitch/service.py": "serves the Slack app's request URL",
    "killswitch/sweep/policy.py": "sweep notices go out through the Slack app",
    "killswitch/settings.py": "SlackAppSettings, the app's own settings",
    "killswitch/cli/main.py": "`serve` (the Slack app) and `demo --via-slack`",
    "killswitch/fleet_file.py": "an owner may be a Slack user id",
    "killswitch/alerts/handling.py": "alerts are told, asked about and narrated in Slack",
}
# The alert receiver's sources are named after their senders (AWS EventBridge, GitHub
# webhooks…), a registry of their own: these modules may name them; the rest of alerts/
# (attribution, guard rails, the desk) may not.
ALERT_SOURCES = {
    "killswitch/alerts/sources/": "one module per sender",
    "killswitch/alerts/models.py": "the list of sources",
    "killswitch/alerts/settings.py": "one settings section per source",
    "killswitch/alerts/openapi.py": "one path per source",
    "killswitch/alerts/playbooks.py": "a playbook matches a source by name",
    "killswitch/alerts/unsigned.py": "each source's parser",
    "killswitch/alerts/receiver.py": "one route per source",
    "killswitch/alerts/refusals.py": "an unknown source is told the known ones",
}


def _named_in(path: Path, names: Sequence[str]) -> list[str]:
    """Provider names a module uses as identifiers, import paths or string values (its
    docstrings aside): whole words, `_` joining a word (so `slack_app` is not `slack`)."""
    word = re.compile(r"(?<![\w])(" + "|".join(names) + r")(?![\w])", re.IGNORECASE)
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = "" if id(node) in docstrings else node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.ImportFrom):
            text = " ".join([node.module or "", *(a.name for a in node.names)])
        elif isinstance(node, ast.Import):
            text = " ".join(a.name for a in node.names)
        else:
            continue
        if match := word.search(text.replace(".", " ")):
            hits.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}: {match[0]}")
    return hits


def test_no_core_module_names_a_provider() -> None:
    """Outside a provider's own package (revokers/<p>/, the sandbox's stand-ins) and its one
    registration line, nothing names a provider: adding one changes no core module."""
    modules = [
        p
        for top in ("killswitch", "flows", "revokers")
        for p in sorted((ROOT / top).rglob("*.py"))
        if not str(p.relative_to(ROOT)).startswith("killswitch/sandbox/")
        and p.parent.name not in PROVIDERS
        and p.relative_to(ROOT) != Path("revokers/registry.py")
    ]
    assert len(modules) > 30, "the scan found too few modules: the walk is wrong"
    hits: list[str] = []
    for path in modules:
        names = PROVIDERS
        where = str(path.relative_to(ROOT))
        if any(where.startswith(prefix) for prefix in ALERT_SOURCES):
            continue
        if any(where.startswith(prefix) for prefix in SLACK_APP):
            names = [n for n in PROVIDERS if n != "slack"]
        hits += _named_in(path, names)
    assert not hits, "provider names in core modules:\n" + "\n".join(hits)


def test_the_scan_sees_a_provider_name() -> None:
    """The scan can fail: a module naming a provider is caught."""
    probe = ROOT / "tests" / "revokers" / "acme" / "revoker.py"
    assert _named_in(probe, ["acme"]), "the scan misses names: the pattern is wrong"


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
