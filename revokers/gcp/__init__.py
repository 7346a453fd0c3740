"""GCP IAM: service accounts, their keys and project bindings (google-cloud-iam, gRPC)."""

from revokers.gcp.settings import GcpSettings
from revokers.plugin import Plugin

PLUGIN = Plugin(
    name="gcp",
    settings=GcpSettings,
    revoker="revokers.gcp.revoker:GcpRevoker",
    stand_in="killswitch.sandbox.gcp",
    infrastructure=True,
)
