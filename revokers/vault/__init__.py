"""Vault / OpenBao: identity entities, tokens, AppRole secret-ids and leases (hvac)."""

from revokers.plugin import Plugin
from revokers.vault.settings import VaultSettings

PLUGIN = Plugin(
    name="vault",
    settings=VaultSettings,
    revoker="revokers.vault.revoker:VaultRevoker",
    stand_in="killswitch.sandbox.vault",
    identifier_fields=frozenset({"role_id", "username"}),
    secret_shapes=(r"hv[sbr]\.[a-z0-9_-]{16,}", r"s\.[a-z0-9]{20,}"),  # tokens
    infrastructure=True,
    secret_source="revokers.vault.material:VaultKvSource",  # noqa: S106  (a module path)
)
