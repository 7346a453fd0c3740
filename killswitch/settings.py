"""Settings: a JSON profile (production, or the one the sandbox writes) under KILLSWITCH_* env.

Which profile: `KILLSWITCH_PROFILE` when set; otherwise `$KILLSWITCH_HOME/profile.json`
(a running sandbox links its own there); otherwise defaults, which point every provider at
its real API and the kill switch's default identity there. Each provider plug-in adds its
own section (`revokers/<provider>/settings.py`). Environment variables override single fields
(`KILLSWITCH_AWS__REGION=eu-west-1`). Every plan and report names the target it acted on.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from killswitch.alerts.settings import AlertSettings
from killswitch.anchors import AnchorSettings
from killswitch.errors import ConfigurationError
from killswitch.scale.settings import ScaleSettings

DEFAULT_PROTECTED_AGENTS = ("killswitch", "breakglass")
S = TypeVar("S", bound=BaseModel)


def default_home() -> Path:
    """Where state lives: `$KILLSWITCH_HOME`, else `$XDG_STATE_HOME/killswitch`."""
    if home := os.environ.get("KILLSWITCH_HOME"):
        return Path(home).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "killswitch"


class SlackAppSettings(BaseModel):
    """The on-call path: the `/killswitch` slash command served by `killswitch serve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: str = Field(
        "https://slack.com/api/", description="Slack's Web API root, for the app's own bot"
    )
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

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://… : the ledger and the inventory in PostgreSQL, shared by "
        "every process and host (unset: SQLite files under home); may carry a password",
    )
    keyring_path: Path | None = Field(None, description="a local probe-material file")
    secret_sources: tuple[str, ...] = Field(
        ("keyring",),
        description="where probe material is read, in order: 'keyring' (a local file) or a "
        "provider that offers a secret store",
    )
    protected_agents: tuple[str, ...] = DEFAULT_PROTECTED_AGENTS
    providers: tuple[str, ...] = Field(
        (), description="the providers to act on; default: those with a section in the profile"
    )
    provider_concurrency: int = Field(
        0, ge=0, description="providers worked on at once (0: all); 1 with max_workers 1 is serial"
    )
    probe_deadline_s: float = Field(
        180.0, gt=0, description="eventually consistent providers take minutes"
    )
    probe_interval_s: float = Field(1.0, gt=0)
    action_deadline_s: float = Field(60.0, gt=0)
    prefect_api_url: str | None = None
    prefect_api_auth: SecretStr | None = Field(
        None,
        description="the Prefect server's basic-auth string (`user:password`, the server's "
        "PREFECT_SERVER_API_AUTH_STRING), sent by every Prefect client the kill switch starts",
    )
    slack_app: SlackAppSettings = SlackAppSettings()
    sweep: SweepSettings = SweepSettings()
    alerts: AlertSettings = AlertSettings()
    scale: ScaleSettings = ScaleSettings()

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

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        text = value.get_secret_value()
        scheme = text.split("://", 1)[0] if "://" in text else ""
        if scheme not in ("postgresql", "postgres"):
            # The value itself may hold a password: only its scheme is named.
            raise ValueError(f"a postgresql:// URL is expected, not {scheme[:20]!r}://…")
        return value

    @property
    def database(self) -> str | None:
        """The PostgreSQL URL (with its password: never print it), or None for SQLite."""
        return self.database_url.get_secret_value() if self.database_url else None

    @property
    def inventory_file(self) -> Path:
        return self.inventory_path or self.home / "inventory.db"

    @property
    def ledger_file(self) -> Path:
        return self.ledger_path or self.home / "ledger.db"

    def section(self, name: str, model: type[S]) -> S:
        """A provider's section of the profile, as its plug-in's settings model."""
        value = getattr(self, name, None)
        if not isinstance(value, model):
            raise ConfigurationError(f"no {model.__name__} section {name!r} in the settings")
        return value


@cache
def settings_model() -> type[Settings]:
    """The settings with one section per registered provider plug-in (`aws`, …): each its
    plug-in's frozen, `extra="forbid"` model, overridable by `KILLSWITCH_<P>__<FIELD>`."""
    from revokers.registry import plugins

    sections: dict[str, Any] = {p.name: (p.settings, p.settings()) for p in plugins()}
    model: type[Settings] = create_model("Settings", __base__=Settings, **sections)
    return model


def profile_path() -> Path | None:
    """The profile in force: KILLSWITCH_PROFILE, else `$KILLSWITCH_HOME/profile.json` when it
    exists (where an operator puts theirs, and where a running sandbox links its own)."""
    if explicit := os.environ.get("KILLSWITCH_PROFILE"):
        return Path(explicit).expanduser()
    default = default_home() / "profile.json"
    return default if default.exists() else None


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
    if "providers" not in data:
        from revokers.registry import plugins

        data["providers"] = [p.name for p in plugins() if p.name in data]
    try:
        return settings_model()(**data)
    except ValidationError as exc:
        where = f"profile {path}" if path else "the environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings in {where}: {problems}") from exc
