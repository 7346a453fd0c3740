"""The AWS section of the profile."""

from __future__ import annotations

from pydantic import Field, SecretStr

from revokers.plugin import ProviderSettings


class AwsSettings(ProviderSettings):
    """How the AWS revoker reaches AWS (or moto) with the kill switch's own identity."""

    endpoint_url: str | None = Field(None, description="None means the real AWS endpoints")
    region: str = "us-east-1"
    access_key_id: str | None = Field(None, description="None means boto3's default chain")
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile_name: str | None = None
    tag_key: str = Field("agent-id", description="the IAM tag that names a principal's agent")
    protected_principals: tuple[str, ...] = Field(
        (), description="user/role names or ARNs never touched, e.g. the kill switch's own"
    )
    max_workers: int = Field(16, ge=1, le=128)
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    settle_s: float = Field(
        10.0,
        ge=0,
        description="how long a rejection must hold before it counts: IAM is eventually "
        "consistent (seconds to minutes) and a replica may still accept the key",
    )
