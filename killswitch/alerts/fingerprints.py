"""Keyed fingerprints of known secrets: how a leaked token with no id of its own (a GitHub,
Slack, OpenAI or Anthropic value in a secret-scanning alert) is traced to its agent.

A fingerprint is HMAC-SHA256 under a key of the kill switch's own (derived from the ledger
key for this one purpose), never the secret itself: the table says which credential a value
belongs to only to someone who already holds the value. Filled wherever probe material is
written (it is a `MaterialStore`: the sandbox's seeding, `killswitch inventory fingerprint`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from killswitch.inventory import Inventory
from killswitch.settings import Settings

PURPOSE = "secret fingerprint"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secret_fingerprints (
    fingerprint TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    field TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


def fingerprint(key: bytes, value: str) -> str:
    """The keyed fingerprint of one secret value."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Known:
    """The credential a fingerprinted value belongs to: which field of its probe material it
    is, and the material's identifier fields (an access key id: names, does not prove)."""

    agent_id: str
    kind: str
    ref: str
    field: str
    identifiers: Mapping[str, str]

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"

    def material(self, value: str) -> dict[str, str]:
        """Probe material made of the leaked value and the credential's identifiers."""
        return {**self.identifiers, self.field: value}


class Fingerprints:
    """The fingerprint table, beside the inventory."""

    def __init__(self, inventory: Inventory, key: bytes, identifier_fields: Collection[str]):
        self.inventory = inventory
        self.key = key
        self.identifier_fields = frozenset(identifier_fields)
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def add(self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = "") -> None:
        """Fingerprint every secret field of one credential's material (a MaterialStore)."""
        if not agent_id:
            return
        identifiers = {k: v for k, v in fields.items() if k in self.identifier_fields}
        rows = [
            (
                fingerprint(self.key, value),
                agent_id,
                kind,
                ref,
                name,
                json.dumps(identifiers, sort_keys=True),
                datetime.now(UTC).isoformat(),
            )
            for name, value in fields.items()
            if name not in self.identifier_fields and value
        ]
        with self.inventory.transaction() as db:
            db.executemany(
                "INSERT INTO secret_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(fingerprint) DO UPDATE SET agent_id=excluded.agent_id, "
                "kind=excluded.kind, ref=excluded.ref, field=excluded.field, "
                "identifiers=excluded.identifiers, recorded_at=excluded.recorded_at",
                rows,
            )

    def lookup(self, value: str) -> Known | None:
        """The credential a leaked value belongs to, when it is known."""
        with self.inventory.transaction() as db:
            row = db.execute(
                "SELECT agent_id, kind, ref, field, identifiers FROM secret_fingerprints "
                "WHERE fingerprint = ?",
                (fingerprint(self.key, value),),
            ).fetchone()
        if row is None:
            return None
        agent_id, kind, ref, field, identifiers = row
        return Known(agent_id, kind, ref, field, json.loads(identifiers))

    def clear(self) -> None:
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM secret_fingerprints")

    def count(self) -> int:
        with self.inventory.transaction() as db:
            return int(db.execute("SELECT COUNT(*) FROM secret_fingerprints").fetchone()[0])


def opened(settings: Settings, inventory: Inventory) -> Fingerprints:
    """The fingerprint table of a runtime's inventory, under the settings' derived key."""
    from killswitch.ledger_key import derived_key
    from killswitch.secrets import identifier_fields

    return Fingerprints(inventory, derived_key(settings, PURPOSE), identifier_fields())
