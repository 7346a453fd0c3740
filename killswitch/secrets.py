"""Probe material: where the secrets that probes authenticate with come from.

A probe needs the secret itself. Sources, in the order a run asks them: material carried by
the trigger (a leaked key in an alert), then the configured secret sources (the sandbox's
keyring file; a secrets store in production). With none, a credential's verdict can at best
be `unverified`. Secrets are wrapped in `Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from killswitch.errors import KillSwitchError
from killswitch.models import Credential

log = logging.getLogger(__name__)


def identifier_fields() -> frozenset[str]:
    """Material fields that name rather than prove (they appear in reports and the ledger),
    as every provider plug-in declares them."""
    from revokers.registry import plugins

    return frozenset().union(*(p.identifier_fields for p in plugins()))


# The name of material a trigger carried (a leaked value in an alert), not read from a store.
CARRIED = "carried by the alert"


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Material:
    """The fields a probe authenticates with (e.g. access key id + secret + session token)."""

    source: str
    fields: Mapping[str, Secret]

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value.reveal() if value is not None else None


class SecretSource(Protocol):
    name: str

    def materials(self, credential: Credential) -> Sequence[Material]:
        """Every piece of probe material this source holds for the credential."""
        ...


class MaterialStore(Protocol):
    """Where seeding (the sandbox, tests) writes probe material."""

    def add(
        self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = ""
    ) -> None: ...


class Stores:
    """Write the same material to several stores (the sandbox: keyring file and Vault KV)."""

    def __init__(self, stores: Sequence[MaterialStore]) -> None:
        self.stores = list(stores)

    def add(self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = "") -> None:
        for store in self.stores:
            store.add(kind, ref, fields, agent_id=agent_id)


class MappingSource:
    """Material handed over in memory, e.g. a leaked key carried by an alert."""

    def __init__(self, name: str, entries: Mapping[str, Sequence[Mapping[str, str]]]) -> None:
        self.name = name
        self._entries = {
            key: [Material(name, {k: Secret(v) for k, v in item.items()}) for item in items]
            for key, items in entries.items()
        }

    def materials(self, credential: Credential) -> Sequence[Material]:
        return list(self._entries.get(credential.key, ()))


class ChainedSource:
    """Ask each source in turn; the first that holds material for a credential wins."""

    name = "chain"

    def __init__(self, sources: Sequence[SecretSource]) -> None:
        self.sources = list(sources)

    def materials(self, credential: Credential) -> Sequence[Material]:
        for source in self.sources:
            try:
                found = source.materials(credential)
            except KillSwitchError as exc:
                # A source that is down must not stop the run: the next source may hold the
                # material, and without any the verdict says so (read-back, never `dead`).
                log.warning(
                    "secret source %s failed for %s: %s", source.name, credential.key, exc.code
                )
                continue
            if found:
                return found
        return []


class KeyringFile:
    """A local JSON file of probe material (mode 0600, outside the repository).

    The sandbox writes the demo fleet's secrets here. Layout:
    `{"entries": {"<kind>:<ref>": [{"field": "value", ...}, ...]}}`.
    """

    name = "keyring"

    def __init__(self, path: Path) -> None:
        self.path = path

    def materials(self, credential: Credential) -> Sequence[Material]:
        items = self._read().get(credential.key, [])
        return [Material(self.name, {k: Secret(v) for k, v in item.items()}) for item in items]

    def add(self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = "") -> None:
        """Append one piece of material for `kind:ref` (atomic, safe across processes)."""
        with self._locked():
            entries = self._read()
            entries.setdefault(f"{kind}:{ref}", []).append(dict(fields))
            self._write(entries)

    def clear(self) -> None:
        with self._locked():
            self._write({})

    def keys(self) -> list[str]:
        return sorted(self._read())

    def entries(self, key: str) -> list[dict[str, str]]:
        """The material held for `kind:ref` (plain values: for fingerprinting only)."""
        return [dict(item) for item in self._read().get(key, [])]

    def secret_values(self) -> Iterator[str]:
        """Every secret in the file, identifiers aside: the canaries tests grep for."""
        identifiers = identifier_fields()
        for items in self._read().values():
            for item in items:
                yield from (v for name, v in item.items() if name not in identifiers)

    def _read(self) -> dict[str, list[dict[str, str]]]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        entries: dict[str, list[dict[str, str]]] = raw.get("entries", {})
        return entries

    def _write(self, entries: Mapping[str, list[dict[str, str]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keyring.")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"version": 1, "entries": entries}, handle)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_suffix(".lock")
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
