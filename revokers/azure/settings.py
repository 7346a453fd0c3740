"""The Azure section of the profile."""

from __future__ import annotations

from pydantic import Field, SecretStr

from revokers.plugin import ProviderSettings


class AzureSettings(ProviderSettings):
    """Azure: Entra service principals (Graph) and their ARM role assignments."""

    tenant_id: str | None = None
    subscription_id: str | None = None
    client_id: str | None = Field(None, description="the kill switch's own app (client id)")
    client_secret: SecretStr | None = None
    authority: str = Field("login.microsoftonline.com", description="Entra authority host")
    arm_url: str = "https://management.azure.com"
    graph_url: str = "https://graph.microsoft.com"
    ca_cert: str | None = Field(None, description="a CA bundle to trust (the sandbox's)")
    scopes: tuple[str, ...] = Field(
        (), description="where role assignments are searched; default: the subscription"
    )
    tag: str = Field("agent-id", description="`<tag>=<agent>` among a principal's tags")
    protected_principals: tuple[str, ...] = Field(
        (), description="service principal object ids or app ids never touched"
    )
    detach_group_memberships: bool = Field(
        True,
        description="remove the principal from the groups through which it holds role "
        "assignments (put back on restore); false: report those grants only",
    )
    max_workers: int = Field(16, ge=1, le=128)
    timeout_s: float = 10.0
    settle_s: float = Field(
        15.0,
        ge=0,
        description="how long the token endpoint's rejection must hold before it counts: "
        "Entra replicates a disabled principal to its token service across regions",
    )
