"""Azure: Entra service principals and their ARM role assignments."""

from revokers.azure.settings import AzureSettings
from revokers.plugin import Plugin

PLUGIN = Plugin(
    name="azure",
    settings=AzureSettings,
    revoker="revokers.azure.revoker:AzureRevoker",
    stand_in="killswitch.sandbox.azure",
    identifier_fields=frozenset({"client_id", "tenant_id"}),
    secret_shapes=(r"[a-z0-9_.-]{3}\dq~[a-z0-9_~.-]{31,34}",),  # Entra client secrets
    infrastructure=True,
)
