"""bench/peer.py imports, and Cloud Custodian stays out of the kill switch's own venv."""

from __future__ import annotations

import importlib.util
import tomllib

from bench import peer


def test_c7n_is_pinned_for_the_benchmark_only() -> None:
    assert peer.c7n_pin().startswith("c7n==")
    project = tomllib.loads((peer.ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    assert not [d for d in declared if d.lower().startswith("c7n")]
    assert importlib.util.find_spec("c7n") is None


def test_policy_disables_keys_and_removes_groups_of_the_agent_only() -> None:
    (policy,) = peer.policy("agent-x")["policies"]
    assert policy["resource"] == "iam-user"
    assert policy["filters"] == [{"tag:agent-id": "agent-x"}]
    assert {"type": "remove-keys", "disable": True} in policy["actions"]
    assert {"type": "delete", "options": ["groups"]} in policy["actions"]
