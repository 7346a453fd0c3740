"""GCP IAM: service accounts, their keys and project bindings (google-cloud-iam, gRPC)."""

from revokers.gcp.settings import GcpSettings
from revokers.plugin import Plugin

PLUGIN = Plugin(
    name="gcp",
    settings=GcpSettings,
    revoker="revokers.gcp.revoker:GcpRevoker",
    stand_in="killswitch.sandbox.gcp",
    # A key file's private key, and API keys.
    secret_shapes=(r"-----begin[a-z ]*private key", r"\"private_key\"", r"aiza[0-9a-z_-]{30,}"),
    infrastructure=True,
)
