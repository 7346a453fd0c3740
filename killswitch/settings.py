"""Settings: a JSON profile (production, or the one the sandbox writes) under KILLSWITCH_* env.

Which profile: `KILLSWITCH_PROFILE` when set; otherwise the running sandbox's profile
(`$KILLSWITCH_HOME/sandbox/profile.json`); otherwise defaults, which point boto3 at its
default credential chain. Environment variables override single fields
(`KILLSWITCH_AWS__REGION=eu-west-1`). Every plan and report names the target it acted on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from killswitch.anchors import AnchorSettings
from killswitch.errors import ConfigurationError

DEFAULT_PROTECTED_AGENTS = ("killswitch", "breakglass")


def default_home() -> Path:
    """Where state lives: `$KILLSWITCH_HOME`, else `$XDG_STATE_HOME/killswitch`."""
    if home := os.environ.get("KILLSWITCH_HOME"):
        return Path(home).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "killswitch"


class AwsSettings(BaseModel):
    """How the AWS revoker reaches AWS (or moto) with the kill switch's own identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class VaultSettings(BaseModel):
    """How the Vault revoker reaches Vault or OpenBao, and the conventions it discovers by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
        ("pki/issue/{agent}/",), description="each agent's own lease prefixes ({agent} = its id)"
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


class GcpSettings(BaseModel):
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


class AzureSettings(BaseModel):
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
    max_workers: int = Field(16, ge=1, le=128)
    timeout_s: float = 10.0


class HttpProviderSettings(BaseModel):
    """A token provider reached over HTTPS (Slack, GitHub, OpenAI, Anthropic)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    admin_key: SecretStr | None = Field(
        None, description="the organisation admin key, where the provider has one"
    )
    timeout_s: float = 10.0
    max_workers: int = Field(16, ge=1, le=128)
    verify: bool | str = True


class SlackAppSettings(BaseModel):
    """The on-call path: the `/killswitch` slash command served by `killswitch serve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_secret: SecretStr | None = Field(None, description="the Slack app's signing secret")
    bot_token: SecretStr | None = Field(None, description="the kill switch's own bot token")
    oncall_user_ids: tuple[str, ...] = Field((), description="who may contain and restore")
    oncall_usergroup: str | None = Field(None, description="or members of this user group")
    oncall_mention: str = Field("<!here>", description="who a run that is not proven pages")
    allowed_channels: tuple[str, ...] = Field((), description="empty: any channel")
    confirm_over_credentials: int = Field(
        25, ge=0, description="containing more credentials than this asks for a button first"
    )
    two_person_rule: bool = Field(False, description="a second on-call must press the button")
    replay_window_s: int = Field(300, ge=1, le=300, description="Slack's own limit: 5 minutes")
    confirmation_ttl_s: int = Field(600, ge=30)


SweepAction = Literal["report", "notify", "contain", "destroy"]
SWEEP_ACTIONS: dict[str, SweepAction] = {
    "zombie": "destroy",
    "expired": "contain",
    "orphan": "notify",
    "stale": "notify",
    "long-lived": "notify",
    "reused": "notify",
}


class SweepSettings(BaseModel):
    """The scheduled zombie sweep: what counts as stale or long-lived, and what it does."""

    model_config = ConfigDict(extra="forbid")

    stale_days: int = Field(90, ge=1, description="not used for this long: stale")
    rotation_days: int = Field(180, ge=1, description="older than this: long-lived")
    notify_grace_s: int = Field(
        7 * 86400, ge=0, description="between telling the owner and containing"
    )
    destroy_grace_s: int = Field(
        7 * 86400, ge=0, description="between containing and destroying for good"
    )
    actions: dict[str, SweepAction] = Field(
        default_factory=lambda: dict(SWEEP_ACTIONS),
        description="per category: report, notify (the owner), contain, destroy (after contain)",
    )
    notify_channel: str = Field(
        "C0NHIHYGIENE", description="where findings without an owner's Slack id are posted"
    )
    cron: str | None = Field(
        "0 6 * * *", description="when `killswitch serve` runs the sweep (None: never)"
    )
    timezone: str = "UTC"

    @field_validator("actions")
    @classmethod
    def _agent_level(cls, actions: dict[str, SweepAction]) -> dict[str, SweepAction]:
        known = set(SWEEP_ACTIONS)
        unknown = set(actions) - known
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; known: {sorted(known)}")
        acting = {c for c, a in actions.items() if a in ("contain", "destroy")}
        if acting - {"zombie", "expired"}:
            raise ValueError(
                "only zombie and expired findings can be contained or destroyed (they name an "
                f"agent); {sorted(acting - {'zombie', 'expired'})} can be reported or notified"
            )
        return {**SWEEP_ACTIONS, **actions}


class Settings(BaseSettings):
    """Everything a run needs to know; parsed once at the edge."""

    model_config = SettingsConfigDict(
        env_prefix="KILLSWITCH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    home: Path = Field(default_factory=default_home)
    target: str = Field("live", description="'sandbox' or 'live'; printed on every plan")
    inventory_path: Path | None = None
    ledger_path: Path | None = None
    ledger_key: SecretStr | None = Field(
        None, description="HMAC key of the ledger chain; default: a 0600 file beside the ledger"
    )
    ledger_anchors: AnchorSettings = AnchorSettings()
    keyring_path: Path | None = Field(None, description="a local probe-material file")
    secret_sources: tuple[str, ...] = Field(
        ("keyring",), description="where probe material is read, in order: 'vault', 'keyring'"
    )
    protected_agents: tuple[str, ...] = DEFAULT_PROTECTED_AGENTS
    providers: tuple[str, ...] = ("aws",)
    provider_concurrency: int = Field(
        0, ge=0, description="providers worked on at once (0: all); 1 with max_workers 1 is serial"
    )
    probe_deadline_s: float = Field(180.0, gt=0, description="AWS IAM is eventually consistent")
    probe_interval_s: float = Field(1.0, gt=0)
    action_deadline_s: float = Field(60.0, gt=0)
    prefect_api_url: str | None = None
    aws: AwsSettings = AwsSettings()
    vault: VaultSettings = VaultSettings()
    gcp: GcpSettings = GcpSettings()
    azure: AzureSettings = AzureSettings()
    slack: HttpProviderSettings = HttpProviderSettings(base_url="https://slack.com/api/")
    github: HttpProviderSettings = HttpProviderSettings(base_url="https://api.github.com")
    openai: HttpProviderSettings = HttpProviderSettings(base_url="https://api.openai.com/v1")
    anthropic: HttpProviderSettings = HttpProviderSettings(base_url="https://api.anthropic.com/v1")
    slack_app: SlackAppSettings = SlackAppSettings()
    sweep: SweepSettings = SweepSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the profile (which arrives as init arguments).
        return (env_settings, init_settings)

    @property
    def inventory_file(self) -> Path:
        return self.inventory_path or self.home / "inventory.db"

    @property
    def ledger_file(self) -> Path:
        return self.ledger_path or self.home / "ledger.db"


def profile_path() -> Path | None:
    """The profile in force: KILLSWITCH_PROFILE, else a running sandbox's, else none."""
    if explicit := os.environ.get("KILLSWITCH_PROFILE"):
        return Path(explicit).expanduser()
    from killswitch.sandbox.state import running_profile

    return running_profile(default_home())


def load_settings(profile: Path | None = None, **overrides: Any) -> Settings:
    """Parse the profile and environment; a bad value is a ConfigurationError naming it."""
    data: dict[str, Any] = {}
    path = profile or profile_path()
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read profile {path}: {exc}") from exc
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        where = f"profile {path}" if path else "the environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings in {where}: {problems}") from exc
