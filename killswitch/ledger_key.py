"""Opening a ledger: its HMAC key (read, or made for a brand-new ledger — never silently
again), the errors of a missing ledger or key, and the configured ledger with its anchors."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from killswitch.errors import KillSwitchError

if TYPE_CHECKING:
    from killswitch.ledger import Ledger
    from killswitch.settings import Settings

MIN_KEY_BYTES = 16


class LedgerKeyError(KillSwitchError):
    code = "ledger-key"
    remediation = (
        "Restore the ledger's HMAC key (the 0600 `<ledger>.key` file, or KILLSWITCH_LEDGER_KEY) "
        "from where it is backed up; a new key would make every existing entry unverifiable."
    )


class LedgerMissingError(KillSwitchError):
    code = "ledger-missing"
    remediation = (
        "Check --ledger or settings.ledger_path. If a ledger existed there, its loss is an "
        "incident: restore it from backup and verify it; never start a new one in its place."
    )


def load_key(path: Path) -> bytes | None:
    """The key in `path` (hex); None when there is no file; LedgerKeyError when malformed."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerKeyError(f"cannot read the ledger's key {path}: {type(exc).__name__}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise LedgerKeyError(
            f"the ledger's key {path} is malformed (expected at least {2 * MIN_KEY_BYTES} hex "
            "digits); it was not replaced"
        )
    return key


def create_key(path: Path) -> bytes:
    """Make a key for a brand-new ledger (0600, exclusive: a racing process's key wins)."""
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        loaded = load_key(path)
        if loaded is None:
            raise LedgerKeyError(f"the ledger's key {path} vanished while it was made") from None
        return loaded
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def ledger_key_from(value: str | None) -> bytes | None:
    """A configured key (hex or text) as bytes; None means the key file beside the ledger."""
    if not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode()


def open_ledger(settings: Settings, path: Path | None = None, *, create: bool = True) -> Ledger:
    """The configured ledger with its key and anchors (private files outside the sandbox):
    in PostgreSQL when settings.database_url is set, unless `path` names a SQLite file."""
    from killswitch.anchors import build_anchors
    from killswitch.ledger import Ledger

    key = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    return Ledger(
        path or settings.ledger_file,
        ledger_key_from(key),
        anchors=build_anchors(settings.ledger_anchors),
        private=settings.target != "sandbox",
        create=create,
        database_url=settings.database if path is None else None,
    )


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A key for one purpose (run tickets…), HMAC-SHA256(ledger key, purpose): the ledger's
    own key is never used raw outside the chain, and one purpose's key says nothing of it."""
    configured = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    return key_for(settings.ledger_file, configured, purpose)


def key_for(ledger_file: Path, configured: str | None, purpose: str) -> bytes:
    """`derived_key` from the ledger's path and its configured key (if any)."""
    path = ledger_file.with_name(ledger_file.name + ".key")
    # create_key is exclusive: a ledger opened since reads the same key when it first appends.
    key = ledger_key_from(configured) or load_key(path) or create_key(path)
    return hmac.new(key, f"killswitch {purpose}".encode(), hashlib.sha256).digest()
