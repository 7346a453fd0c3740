"""The Vault (or OpenBao) section of the profile."""

from __future__ import annotations

from pydantic import Field, SecretStr

from revokers.plugin import ProviderSettings
from revokers.vault.policies import DEFAULT_LEASE_PREFIXES


class VaultSettings(ProviderSettings):
    """How the Vault revoker reaches Vault or OpenBao, and the conventions it discovers by."""

    addr: str | None = Field(None, description="e.g. https://vault.internal:8200")
    namespace: str | None = None
    auth_method: str = Field("token", pattern="^(token|approle)$")
    token: SecretStr | None = Field(None, description="the kill switch's own token (token auth)")
    role_id: str | None = Field(None, description="approle auth of the kill switch itself")
    secret_id: SecretStr | None = None
    approle_auth_mount: str = "approle"
    verify: bool | str = Field(True, description="TLS: True, False, or a CA bundle path")
    protected_entities: tuple[str, ...] = Field(
        (), description="entity names or ids never touched (break-glass operators)"
    )
    protected_accessors: tuple[str, ...] = Field(
        (), description="token accessors a sweep reports but never acts on (a root token)"
    )
    lease_prefixes: tuple[str, ...] = Field(
        DEFAULT_LEASE_PREFIXES,
        description="each agent's own lease prefixes ({agent} = its id); the kill switch's "
        "Vault policy grants revoke-prefix on exactly these (`killswitch permissions vault`)",
    )
    probe_read_path: str | None = Field(
        None, description="a path the agent's policies let it read: a second, policy-gated probe"
    )
    kv_mount: str = "secret"
    kv_prefix: str = Field(
        "killswitch/material",
        description="probe material at <kv_mount>/<prefix>/<agent>/<kind>/<ref>",
    )
    max_workers: int = Field(32, ge=1, le=128, description="Vault serves many reads at once")
    timeout_s: float = 10.0
