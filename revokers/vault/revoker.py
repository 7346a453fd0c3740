"""Vault / OpenBao revoker (hvac): an agent's identity entity and everything hanging off it.

contain = disable the entity (every token and login of it refused at once, reversibly) and
revoke the agent's leases by prefix (irreversible: dynamic secrets die at their source);
detach = leave identity groups (recorded for undo); probe = the agent's own token / secret-id /
password against Vault, and a lookup of each lease. See shared PROVIDERS.md, Vault section.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import Any

from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Nhi,
    UndoRecord,
    Verdict,
)
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import Discovery, ProbeAttempt, Revoker, revoker
from revokers.vault import discovery, enumeration, operations, policies, probes
from revokers.vault.client import Clients
from revokers.vault.errors import translate
from revokers.vault.settings import VaultSettings


@revoker("vault")
class VaultRevoker(Revoker):
    credential_kinds = ("vault.token", "vault.secret-id", "vault.userpass", "vault.lease")
    principal_kinds = ("vault.entity",)
    grant_kinds = ("vault.group-membership",)
    self_probing_kinds = ("vault.lease",)
    enumerable = True
    permissions = policies.PERMISSIONS

    def __init__(self, config: VaultSettings, cache: Path | None = None) -> None:
        self.config = config
        self.max_workers = config.max_workers
        self.clients = Clients(config)
        self.accessors = discovery.AccessorIndex(self.clients, config.max_workers, cache)
        self._own_entity: str | None = None
        self._own_accessor = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultRevoker:
        config = settings.section("vault", VaultSettings)
        where = hashlib.sha256(str(config.addr).encode()).hexdigest()[:12]
        return cls(config, settings.home / "cache" / f"vault-accessors-{where}.json")

    def own_entity(self) -> str:
        """The entity behind the kill switch's own token ('' for a root or entity-less token)."""
        if self._own_entity is None:
            try:
                data = self.clients.own().auth.token.lookup_self()["data"]
            except Exception as exc:
                raise translate(exc, doing="auth/token/lookup-self (own identity)") from exc
            self._own_entity = str(data.get("entity_id") or "")
            self._own_accessor = str(data.get("accessor") or "")
        return self._own_entity

    def enumerate(self) -> Iterator[Nhi]:
        own = self.own_entity()
        protected = set(self.config.protected_entities)
        accessors = set(self.config.protected_accessors)

        def is_protected(accessor: str, entity: discovery.Entity | None) -> bool:
            return accessor in accessors or (
                entity is not None
                and (entity.id == own or entity.id in protected or entity.name in protected)
            )

        return enumeration.enumerate_tokens(
            self.clients,
            workers=self.max_workers,
            own_accessor=self._own_accessor,
            protected=is_protected,
        )

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        prefixes = [p.format(agent=agent.id) for p in self.config.lease_prefixes]
        # Independent reads at once: the token scan, the leases, the groups and the AppRole
        # named after the agent do not need the entity first.
        # Each in a copy of this context: the discovery's deadline goes with it (per-read
        # retries stop in time: killswitch.retry.due_within).
        with ThreadPoolExecutor(max_workers=6) as pool:
            own = pool.submit(copy_context().run, self.own_entity)
            scan = pool.submit(copy_context().run, self.accessors.scan)
            leases = pool.submit(copy_context().run, discovery.leases, self.clients, prefixes)
            groups = pool.submit(copy_context().run, discovery.group_names, self.clients)
            conventional = ("approle", agent.id)
            approle = pool.submit(
                copy_context().run,
                discovery.approle_secret_ids,
                self.clients,
                conventional[0],
                conventional[1],
            )
            found = discovery.find_entities(self.clients, agent.id, declared)
            protected = set(self.config.protected_entities)
            own_id = own.result()
            skipped = [
                f"identity/entity/{e.id}"
                for e in found
                if e.id == own_id or e.id in protected or e.name in protected
            ]
            entities = [e for e in found if f"identity/entity/{e.id}" not in skipped]
            known = {conventional: approle.result()}
            secret_ids = {
                e.id: discovery.secret_id_accessors(self.clients, e, known) for e in entities
            }
            names = groups.result()
            for entity in entities:
                entity.groups = {gid: names.get(gid, gid) for gid in entity.group_ids}
            accessors, lease_ids = scan.result(), leases.result()
        credentials, grants, actions, destroy = [], [], [], []
        for entity in entities:
            own_tokens = [(k, v) for k, v in accessors.items() if v.get("entity_id") == entity.id]
            c, g, a = discovery.entity_plan(
                entity, own_tokens, secret_ids[entity.id], lease_ids, prefixes, agent.id
            )
            credentials += c
            grants += g
            actions += a
            destroy += discovery.destroy_plan(entity, own_tokens, secret_ids[entity.id])
        return Discovery(
            tuple(credentials), tuple(grants), tuple(actions), tuple(skipped), tuple(destroy)
        )

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        return operations.perform(self.clients, action)

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        return probes.probe(self.clients, credential, material, self.config.probe_read_path)

    def read_back(self, credential: Credential) -> Verdict:
        return probes.read_back(self.clients, credential)

    def restore(self, record: UndoRecord) -> ActionResult:
        return operations.restore(self.clients, record.action, record.data)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return policies.permission_policy()
