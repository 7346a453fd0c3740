"""AWS IAM: access keys, users and roles tagged with the agent's id (boto3)."""

from revokers.aws.settings import AwsSettings
from revokers.plugin import Plugin

PLUGIN = Plugin(
    name="aws",
    settings=AwsSettings,
    revoker="revokers.aws.revoker:AwsRevoker",
    stand_in="killswitch.sandbox.aws",
    identifier_fields=frozenset({"access_key_id"}),
    # STS session tokens; access key ids name keys (the inventory holds them).
    secret_shapes=(r"(?:iqojb3jpz2lu|fwogzxivyxdz)[a-z0-9/+=]{16,}",),
    identifier_shapes=(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}",),
    infrastructure=True,
)
