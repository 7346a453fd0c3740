"""The demo fleet in OpenBao: per agent an entity with AppRole and userpass aliases, live
tokens, secret-ids, PKI leases under the agent's own prefix, and identity-group memberships.

Seeded with the dev server's root token; the kill switch itself gets a token of its own
with exactly the `killswitch` policy (see `killswitch permissions vault`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hvac

from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, SweepSeeds
from killswitch.secrets import MaterialStore
from revokers.vault.operations import set_membership
from revokers.vault.policies import policy_hcl

KV_PREFIX = "killswitch/material"
PROBE_READ_PATH = "secret/data/shared/agent-config"
GROUPS = {"agents-readers": ["agent-read"], "agents-pki": ["agent-pki"]}
POLICIES = {
    "agent-read": 'path "secret/data/shared/*" { capabilities = ["read"] }',
    # Templated: each agent may issue certificates only from its own PKI role.
    "agent-pki": (
        'path "pki/issue/{{identity.entity.name}}" { capabilities = ["create", "update"] }'
    ),
}


@dataclass
class Vault:
    """The stand-in's address and root token (seeding only; the kill switch has its own)."""

    addr: str
    root_token: str = field(repr=False)
    _accessors: dict[str, str] = field(default_factory=dict, repr=False)

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, timeout=10)

    @property
    def accessors(self) -> dict[str, str]:
        """Auth mount name -> mount accessor (aliases are created against accessors)."""
        if not self._accessors:
            auths = self.root().sys.list_auth_methods()["data"]
            self._accessors = {m.rstrip("/"): str(i["accessor"]) for m, i in auths.items()}
        return self._accessors


def bootstrap(vault: Vault) -> str:
    """Auth methods, PKI, policies, groups; returns the kill switch's own token."""
    client = vault.root()
    client.sys.enable_auth_method("approle")
    client.sys.enable_auth_method("userpass")
    client.sys.enable_secrets_engine("pki", path="pki")
    client.sys.tune_mount_configuration("pki", max_lease_ttl="8760h")
    client.secrets.pki.generate_root(
        type="internal", common_name="sandbox.killswitch.local", mount_point="pki"
    )
    for name, hcl in POLICIES.items():
        client.sys.create_or_update_policy(name, hcl)
    # Exactly what `killswitch permissions vault` prints (the profile's lease prefixes are
    # the default ones): every sandbox run proves that policy is enough.
    client.sys.create_or_update_policy("killswitch", policy_hcl(kv_prefix=KV_PREFIX))
    for name, policies in GROUPS.items():
        client.secrets.identity.create_or_update_group(name=name, policies=policies)
    client.secrets.kv.v2.create_or_update_secret(
        path="shared/agent-config",
        secret={"model": "demo", "region": "sandbox"},
        mount_point="secret",
    )
    own = client.auth.token.create(
        policies=["killswitch"],
        no_default_policy=True,  # nothing but the kill switch's own policy
        no_parent=True,
        ttl="720h",
        display_name="killswitch",
        renewable=True,
    )
    return str(own["auth"]["client_token"])


def _group_ids(client: hvac.Client) -> dict[str, str]:
    return {
        name: str(client.secrets.identity.read_group_by_name(name)["data"]["id"]) for name in GROUPS
    }


def seed_agent(
    vault: Vault,
    store: MaterialStore,
    agent_id: str,
    owner: str,
    *,
    tokens: int = 2,
    certificates: int = 2,
    groups: Sequence[str] = tuple(GROUPS),
) -> dict[str, Any]:
    """One agent's Vault presence; returns the entity id and what was minted (no secrets)."""
    client = vault.root()

    def remember(kind: str, ref: str, fields: dict[str, str]) -> None:
        store.add(kind, ref, fields, agent_id=agent_id)

    entity = client.secrets.identity.create_or_update_entity(
        name=agent_id, metadata={"agent-id": agent_id, "owner": owner}
    )["data"]
    entity_id = str(entity["id"])
    client.auth.approle.create_or_update_approle(
        agent_id,
        token_policies=["default"],
        token_ttl="12h",  # noqa: S106  (a TTL, not a password)
        mount_point="approle",
    )
    role_id = str(client.auth.approle.read_role_id(agent_id)["data"]["role_id"])
    client.secrets.identity.create_or_update_entity_alias(
        name=role_id, canonical_id=entity_id, mount_accessor=vault.accessors["approle"]
    )
    password = secrets.token_urlsafe(18)
    client.auth.userpass.create_or_update_user(agent_id, password=password, policies=["default"])
    client.secrets.identity.create_or_update_entity_alias(
        name=agent_id, canonical_id=entity_id, mount_accessor=vault.accessors["userpass"]
    )
    remember(
        "vault.userpass", f"auth/userpass/{agent_id}", {"username": agent_id, "password": password}
    )
    group_ids = _group_ids(client)
    for name in groups:
        set_membership(client, group_ids[name], entity_id, member=True)
    client.secrets.pki.create_or_update_role(
        agent_id, {"allow_any_name": True, "generate_lease": True, "ttl": "72h"}, mount_point="pki"
    )
    minted: list[str] = []
    secret_ids = []
    for _ in range(2):
        sid = client.auth.approle.generate_secret_id(agent_id, metadata={"agent-id": agent_id})
        secret_ids.append(sid["data"])
        remember(
            "vault.secret-id",
            str(sid["data"]["secret_id_accessor"]),
            {"role_id": role_id, "secret_id": str(sid["data"]["secret_id"])},
        )
    agent_client = hvac.Client(url=vault.addr, timeout=10)
    for i in range(tokens + 1):
        if i < tokens:
            agent_client.auth.approle.login(role_id=role_id, secret_id=secret_ids[0]["secret_id"])
        else:
            agent_client.auth.userpass.login(agent_id, password)
        token = str(agent_client.token)
        accessor = str(agent_client.auth.token.lookup_self()["data"]["accessor"])
        remember("vault.token", accessor, {"token": token})
        minted.append(accessor)
    for n in range(certificates):
        agent_client.secrets.pki.generate_certificate(
            agent_id, f"{agent_id}-{n}.sandbox.killswitch.local", mount_point="pki"
        )
    return {"entity_id": entity_id, "token_accessors": minted}


def login(addr: str, role_id: str, secret_id: str) -> tuple[str, str]:
    """An AppRole login as the agent (a token 'minted just before the run'); returns
    (accessor, token) and stores neither."""
    agent_client = hvac.Client(url=addr, timeout=10)
    agent_client.auth.approle.login(role_id=role_id, secret_id=secret_id)
    accessor = str(agent_client.auth.token.lookup_self()["data"]["accessor"])
    return accessor, str(agent_client.token)


def root_accessor(vault: Vault) -> str:
    """The sandbox root token's accessor: protected (reported by sweeps, never acted on)."""
    return str(vault.root().auth.token.lookup_self()["data"]["accessor"])


@dataclass(frozen=True, slots=True)
class Options:
    """An agent's Vault seeding: AppRole tokens and PKI certificates (leases) to mint, and
    the identity groups its entity joins."""

    tokens: int = 2
    certificates: int = 2
    groups: Sequence[str] = tuple(GROUPS)

    def seeded(self) -> Seeded:
        """Its userpass login, two secret-ids, the tokens (and one userpass token), the leases;
        its group memberships."""
        return Seeded(1 + 2 + self.tokens + 1 + self.certificates, len(self.groups))


@dataclass(frozen=True, slots=True)
class Seeder:
    """The Vault plug-in's seeding, with the root token (the kill switch has a token of its
    own: `token`)."""

    vault: Vault
    sandbox: Sandbox
    token: str
    root_accessor: str

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """The agent's entity, aliases, tokens, secret-ids, leases, groups (`Options`)."""
        chosen = Options(**options)
        seed_agent(
            self.vault,
            self.sandbox.store,
            spec.id,
            spec.owner,
            tokens=chosen.tokens,
            certificates=chosen.certificates,
            groups=chosen.groups,
        )
        return chosen.seeded()

    def seed_sweep(self) -> SweepSeeds:
        """An orphaned token: no entity, nobody's (a forgotten script's)."""
        orphan = self.vault.root().auth.token.create(
            policies=["default"], no_parent=True, ttl="720h", display_name="forgotten-script"
        )
        return SweepSeeds(orphan=(str(orphan["auth"]["accessor"]),))

    def _addr(self) -> str:
        return str(self.sandbox.stand_ins["openbao"]["proxied"])

    def profile(self) -> Mapping[str, Any]:
        """`vault`: the proxied address, the kill switch's token, what is protected."""
        return {
            "vault": {
                "addr": self._addr(),
                "token": self.token,
                "protected_entities": ["breakglass"],
                "protected_accessors": [self.root_accessor],
                "probe_read_path": PROBE_READ_PATH,
                "kv_prefix": KV_PREFIX,
            }
        }

    def status(self) -> Mapping[str, Any]:
        """`providers.vault`: the proxied address, both tokens, the root token's accessor."""
        return {
            "vault": {
                "addr": self._addr(),
                "token": self.token,
                "root_token": self.vault.root_token,
                "root_accessor": self.root_accessor,
            }
        }
