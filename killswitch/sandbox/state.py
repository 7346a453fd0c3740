"""Where the sandbox keeps its state (outside the repository) and how to tell it is running."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Paths:
    """Every file the sandbox writes, under `$KILLSWITCH_HOME/sandbox`."""

    root: Path

    @classmethod
    def under(cls, home: Path) -> Paths:
        return cls(home / "sandbox")

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def profile(self) -> Path:
        return self.root / "profile.json"

    @property
    def keyring(self) -> Path:
        return self.root / "keyring.json"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.db"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"

    @property
    def stand_ins(self) -> Path:
        return self.root / "stand-ins.json"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def pid_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and its command line carries `marker` (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True
    return marker in cmdline


def read_state(paths: Paths) -> dict[str, Any] | None:
    """The sandbox's `state.json`, or None when there is none (or it is unreadable)."""
    try:
        data: dict[str, Any] = json.loads(paths.state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def is_running(state: dict[str, Any] | None) -> bool:
    """True when the state names a live stand-ins daemon."""
    if not state:
        return False
    stand_ins = state.get("processes", {}).get("stand-ins")
    return bool(stand_ins) and pid_alive(int(stand_ins["pid"]), str(stand_ins["marker"]))


def running_profile(home: Path) -> Path | None:
    """The sandbox's profile when its stand-ins are running under `home`, else None."""
    paths = Paths.under(home)
    if is_running(read_state(paths)) and paths.profile.exists():
        return paths.profile
    return None


def home_profile(home: Path) -> Path:
    """Where the kill switch looks for a profile by default: `$KILLSWITCH_HOME/profile.json`."""
    return home / "profile.json"


def profile_linked(home: Path) -> bool:
    """True when `$KILLSWITCH_HOME/profile.json` is a symlink to the sandbox's profile."""
    link = home_profile(home)
    if not link.is_symlink():
        return False
    target = link.parent / os.readlink(link)
    return target.resolve() == Paths.under(home).profile.resolve()


def link_profile(home: Path) -> bool:
    """Point `$KILLSWITCH_HOME/profile.json` at the sandbox's profile, unless a profile of
    someone else's is there (left alone); whether the link is the sandbox's."""
    link = home_profile(home)
    if profile_linked(home):
        return True
    if link.exists() or link.is_symlink():
        return False
    relative = Paths.under(home).profile.relative_to(home)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(relative)
    os.replace(tmp, link)
    return True


def unlink_profile(home: Path) -> None:
    """Remove `$KILLSWITCH_HOME/profile.json` if it is the sandbox's link (nothing else)."""
    if profile_linked(home):
        home_profile(home).unlink()
