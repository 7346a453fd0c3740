"""Probe material kept in Vault's KV v2: what the agent itself was given, read to probe it.

Convention: `<kv_mount>/data/<kv_prefix>/<agent>/<kind>/<quoted ref>` holds
`{"material": [{field: value, ...}, ...]}`. Production keeps the agents' secrets there (or
wherever they are provisioned from); the sandbox writes the demo fleet's secrets there too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from killswitch.errors import NotFoundError
from killswitch.models import Credential
from killswitch.secrets import Material, Secret
from killswitch.settings import VaultSettings
from revokers.vault.client import Clients
from revokers.vault.errors import translate

CACHE_S = 30.0


class VaultKvSource:
    """A SecretSource (and, for the sandbox's seeding, a store) over Vault KV v2."""

    name = "vault"

    def __init__(self, config: VaultSettings, clients: Clients | None = None) -> None:
        self.config = config
        self.clients = clients or Clients(config)
        self._cache: dict[str, tuple[float, list[Material]]] = {}
        self._lock = threading.Lock()

    def path(self, agent_id: str, kind: str, ref: str) -> str:
        return f"{self.config.kv_prefix}/{agent_id}/{kind}/{quote(ref, safe='')}"

    def materials(self, credential: Credential) -> Sequence[Material]:
        key = credential.key
        with self._lock:
            cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        path = self.path(credential.agent_id, credential.kind, credential.ref)
        try:
            response = self.clients.own().secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.config.kv_mount, raise_on_deleted_version=True
            )
            items = response["data"]["data"].get("material", [])
        except Exception as exc:
            error = translate(exc, doing=f"read probe material {path}")
            if not isinstance(error, NotFoundError):
                raise error from exc
            items = []
        found = [
            Material(self.name, {k: Secret(str(v)) for k, v in item.items()}) for item in items
        ]
        with self._lock:
            self._cache[key] = (time.monotonic(), found)
        return found

    def add(self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = "") -> None:
        """Append one piece of material (read-modify-write; the sandbox seeds this way)."""
        path = self.path(agent_id, kind, ref)
        kv = self.clients.own().secrets.kv.v2
        try:
            current = kv.read_secret_version(
                path=path, mount_point=self.config.kv_mount, raise_on_deleted_version=True
            )["data"]["data"]
        except Exception as exc:
            if not isinstance(translate(exc, doing="read"), NotFoundError):
                raise
            current = {}
        material = [*current.get("material", []), dict(fields)]
        kv.create_or_update_secret(
            path=path, secret={"material": material}, mount_point=self.config.kv_mount
        )
        with self._lock:
            self._cache.pop(f"{kind}:{ref}", None)
