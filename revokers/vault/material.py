"""Probe material kept in Vault's KV v2: what the agent itself was given, read to probe it.

Convention: one secret per agent, `<kv_mount>/data/<kv_prefix>/<agent>`, whose data maps
`<kind>:<ref>` to a list of material (`[{field: value, ...}, ...]`). One read serves every
credential of the agent (a containment of sixty credentials costs one round trip, not
sixty). Production keeps the agents' secrets there (or wherever they are provisioned from);
the sandbox writes the demo fleet's secrets there too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hvac import exceptions as hv

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import Credential
from killswitch.secrets import Material, Secret
from revokers.vault.client import Clients
from revokers.vault.errors import translate
from revokers.vault.settings import VaultSettings

CACHE_S = 30.0
# A failed read answers the credentials queued behind it for this long: a silent Vault costs
# a run one client timeout, not one per credential (they wait for the same read).
FAILED_S = 5.0


class VaultKvSource:
    """A SecretSource (and, for the sandbox's seeding, a store) over Vault KV v2."""

    name = "vault"

    def __init__(self, config: VaultSettings, clients: Clients | None = None) -> None:
        self.config = config
        self.clients = clients or Clients(config)
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._failed: dict[str, tuple[float, KillSwitchError]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def path(self, agent_id: str) -> str:
        return f"{self.config.kv_prefix}/{agent_id}"

    def _read(self, agent_id: str) -> tuple[dict[str, Any], int]:
        """The agent's secret data and its version (0: there is none)."""
        try:
            response = self.clients.own().secrets.kv.v2.read_secret_version(
                path=self.path(agent_id),
                mount_point=self.config.kv_mount,
                raise_on_deleted_version=True,
            )
        except Exception as exc:
            error = translate(exc, doing=f"read probe material of {agent_id}")
            if isinstance(error, NotFoundError):
                return {}, 0
            raise error from exc
        return dict(response["data"]["data"]), int(response["data"]["metadata"]["version"])

    def _agent(self, agent_id: str) -> dict[str, Any]:
        """The agent's material, read once per CACHE_S however many credentials ask."""
        with self._lock:
            lock = self._locks.setdefault(agent_id, threading.Lock())
        with lock:  # concurrent probes of one agent wait for the one read
            cached = self._cache.get(agent_id)
            if cached and time.monotonic() - cached[0] < CACHE_S:
                return cached[1]
            failed = self._failed.get(agent_id)
            if failed and time.monotonic() - failed[0] < FAILED_S:
                raise failed[1]
            try:
                data, _ = self._read(agent_id)
            except KillSwitchError as exc:
                self._failed[agent_id] = (time.monotonic(), exc)
                raise
            self._failed.pop(agent_id, None)
            self._cache[agent_id] = (time.monotonic(), data)
            return data

    def materials(self, credential: Credential) -> Sequence[Material]:
        items = self._agent(credential.agent_id).get(credential.key, [])
        return [Material(self.name, {k: Secret(str(v)) for k, v in item.items()}) for item in items]

    def add(self, kind: str, ref: str, fields: Mapping[str, str], *, agent_id: str = "") -> None:
        """Append one piece of material (check-and-set, retried if someone wrote between)."""
        kv = self.clients.own().secrets.kv.v2
        for _ in range(10):
            data, version = self._read(agent_id)
            data.setdefault(f"{kind}:{ref}", []).append(dict(fields))
            try:
                kv.create_or_update_secret(
                    path=self.path(agent_id),
                    secret=data,
                    cas=version,
                    mount_point=self.config.kv_mount,
                )
            except hv.InvalidRequest:  # "check-and-set parameter did not match"
                continue
            with self._lock:
                self._cache.pop(agent_id, None)
            return
        raise NotFoundError(f"could not write probe material of {agent_id}", provider="vault")
