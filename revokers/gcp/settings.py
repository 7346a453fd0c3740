"""The GCP section of the profile."""

from __future__ import annotations

from pydantic import Field

from revokers.plugin import ProviderSettings


class GcpSettings(ProviderSettings):
    """GCP IAM: the project whose service accounts and allow policy the kill switch guards."""

    project: str | None = Field(None, description="the project id, e.g. acme-agents-prod")
    grpc_target: str | None = Field(
        None, description="host:port of an IAM gRPC endpoint (the sandbox); None: Google's, ADC"
    )
    tag: str = Field("agent-id", description="`<tag>=<agent>` in an account's description")
    protected_accounts: tuple[str, ...] = Field(
        (), description="service account emails never touched (the kill switch's own, too)"
    )
    max_workers: int = Field(16, ge=1, le=128)
    timeout_s: float = 10.0
    settle_s: float = Field(
        5.0,
        ge=0,
        description="how long invalid_grant must hold before it counts: disabling is "
        "documented as immediate, but IAM is eventually consistent",
    )
