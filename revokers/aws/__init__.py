"""AWS IAM: access keys, users and roles tagged with the agent's id (boto3)."""

from revokers.aws.settings import AwsSettings
from revokers.plugin import Plugin

PLUGIN = Plugin(
    name="aws",
    settings=AwsSettings,
    revoker="revokers.aws.revoker:AwsRevoker",
    stand_in="killswitch.sandbox.aws",
    identifier_fields=frozenset({"access_key_id"}),
    infrastructure=True,
)
