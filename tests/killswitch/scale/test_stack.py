"""The stack's profile is made from the profile in force before it — also on the second
`scale up`, when `$KILLSWITCH_HOME/profile.json` already points at the stack's own and the
link it replaced was the sandbox's relative one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from killswitch.sandbox.processes import write_private
from killswitch.scale import stack


def test_a_second_up_reads_the_profile_the_first_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "sandbox").mkdir(parents=True)
    sandbox_profile = {"target": "sandbox", "ledger_path": str(home / "sandbox" / "ledger.db")}
    (home / "sandbox" / "profile.json").write_text(json.dumps(sandbox_profile))
    (home / "profile.json").symlink_to("sandbox/profile.json")  # as the sandbox links it
    monkeypatch.setenv("KILLSWITCH_HOME", str(home))
    monkeypatch.delenv("KILLSWITCH_PROFILE", raising=False)
    paths = stack.Paths.under(home)
    paths.root.mkdir()

    base, base_path = stack._base_profile(paths)  # the first `up`
    assert base == sandbox_profile
    write_private(paths.profile, {**base, "database_url": "postgresql://x/y"})
    previous = stack._link(home, paths.profile)
    assert previous == str(home / "sandbox" / "profile.json")
    assert (home / "profile.json").resolve() == paths.profile.resolve()
    write_private(paths.state, {"previous_profile": previous})

    monkeypatch.chdir(tmp_path)  # the second `up`, from anywhere
    assert stack._base_profile(paths)[0] == sandbox_profile
