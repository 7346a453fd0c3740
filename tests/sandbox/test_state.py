"""`$KILLSWITCH_HOME/profile.json`: the sandbox links its profile there, never over another's."""

from __future__ import annotations

from pathlib import Path

from killswitch.sandbox.state import (
    Paths,
    home_profile,
    link_profile,
    profile_linked,
    unlink_profile,
)


def _sandbox_profile(home: Path) -> Path:
    paths = Paths.under(home)
    paths.root.mkdir(parents=True)
    paths.profile.write_text('{"target": "sandbox"}')
    return paths.profile


def test_up_links_the_profile_and_down_removes_only_its_own_link(tmp_path: Path) -> None:
    profile = _sandbox_profile(tmp_path)
    assert not profile_linked(tmp_path)
    assert link_profile(tmp_path) and profile_linked(tmp_path)
    assert home_profile(tmp_path).read_text() == profile.read_text()
    assert link_profile(tmp_path)  # again: still the sandbox's
    unlink_profile(tmp_path)
    assert not home_profile(tmp_path).exists() and not profile_linked(tmp_path)


def test_a_profile_of_someone_else_is_left_alone(tmp_path: Path) -> None:
    _sandbox_profile(tmp_path)
    mine = home_profile(tmp_path)
    mine.write_text('{"target": "production"}')
    assert not link_profile(tmp_path) and not profile_linked(tmp_path)
    unlink_profile(tmp_path)
    assert mine.read_text() == '{"target": "production"}'


def test_a_link_elsewhere_is_left_alone(tmp_path: Path) -> None:
    _sandbox_profile(tmp_path)
    elsewhere = tmp_path / "other.json"
    elsewhere.write_text("{}")
    home_profile(tmp_path).symlink_to(elsewhere)
    assert not link_profile(tmp_path)
    unlink_profile(tmp_path)
    assert home_profile(tmp_path).resolve() == elsewhere.resolve()
