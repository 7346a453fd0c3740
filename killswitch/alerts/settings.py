"""The alert receiver's settings: one section per source, each with its secret.

A source whose secret is not configured is disabled: its requests are refused with a
reason (404), never accepted unauthenticated.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from killswitch.alerts.guard import GuardSettings

# SNS signs with certificates served from its own regional endpoints only.
SNS_CERT_HOSTS = (r"sns\.[a-z0-9-]+\.amazonaws\.com", r"sns\.[a-z0-9-]+\.amazonaws\.com\.cn")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class AwsAlertSettings(_Section):
    """EventBridge API destination: the connection's API-key authorization."""

    header: str = Field(
        "x-killswitch-key",
        description="the header the EventBridge connection's API-key authorization sends",
    )
    api_key: SecretStr | None = Field(None, description="that header's value (None: disabled)")

    @field_validator("header")
    @classmethod
    def _lower(cls, header: str) -> str:
        if not header or not all(c.isalnum() or c in "-_" for c in header):
            raise ValueError("a header name is letters, digits, '-' or '_'")
        return header.lower()


class SnsAlertSettings(_Section):
    """An SNS HTTPS subscription: signed messages from allowed topics only."""

    enabled: bool = Field(False, description="SNS has no shared secret: turn it on explicitly")
    topic_arns: tuple[str, ...] = Field(
        (), description="topics whose messages are accepted (empty: none)"
    )
    cert_hosts: tuple[str, ...] = Field(
        SNS_CERT_HOSTS,
        description="regular expressions (full match of host[:port]) a SigningCertURL or "
        "SubscribeURL may name; always over https",
    )
    confirm_subscriptions: bool = Field(
        True, description="confirm a SubscriptionConfirmation of an allowed topic (GET)"
    )
    max_age_s: int = Field(
        3600,
        ge=60,
        le=86400,
        description="how old a message's Timestamp may be: SNS resends a failed delivery with "
        "its original Timestamp, so this must outlast the topic's delivery policy",
    )
    cert_ca_file: str | None = Field(
        None, description="a CA bundle for the certificate host (the sandbox's test CA)"
    )

    @field_validator("cert_hosts")
    @classmethod
    def _patterns(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            try:
                re.compile(host)
            except re.error as exc:
                raise ValueError(f"cert_hosts {host!r} is not a regular expression: {exc}") from exc
        return hosts


class AlertmanagerAlertSettings(_Section):
    """Prometheus Alertmanager's webhook receiver: `http_config.authorization` bearer."""

    bearer_token: SecretStr | None = Field(None, description="None: disabled")
    agent_label: str = Field("agent_id", description="the label that names the agent")
    environment_label: str = Field("environment", description="the label naming its environment")
    severity_label: str = Field("severity", description="critical/high/warning/… or a number")


class GithubAlertSettings(_Section):
    """GitHub organisation webhook (`secret_scanning_alert`): X-Hub-Signature-256."""

    webhook_secret: SecretStr | None = Field(None, description="None: disabled")
    api_url: str = Field(
        "https://api.github.com",
        description="GitHub's REST root, where an alert's leaked value is read (the webhook "
        "does not carry it)",
    )
    api_token: SecretStr | None = Field(
        None,
        description="a token with 'Secret scanning alerts: read' on the organisation's "
        "repositories (None: leaked values are not fetched, such tokens end unverified)",
    )


class GenericAlertSettings(_Section):
    """Any detector: the Standard Webhooks scheme (webhook-id/-timestamp/-signature)."""

    secret: SecretStr | None = Field(None, description="`whsec_…` (base64); None: disabled")

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None:
            return None
        value = secret.get_secret_value()
        if not value.startswith("whsec_"):
            raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
        try:
            key = base64.b64decode(value.removeprefix("whsec_") + "==", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("a Standard Webhooks secret is whsec_ and base64") from None
        if len(key) < 16:
            raise ValueError("a Standard Webhooks secret holds at least 16 bytes")
        return secret


class AlertSettings(_Section):
    """`POST /alerts/<source>`: size limit, replay window and one section per source."""

    max_body: int = Field(256 * 1024, ge=1024, le=8 * 1024 * 1024, description="bytes")
    replay_window_s: int = Field(
        300, ge=30, le=3600, description="how old a signed timestamp may be, either way"
    )
    replay_retention_s: int = Field(
        3 * 86400,
        ge=3600,
        description="how long an id is remembered by schemes without a timestamp (GitHub's "
        "X-GitHub-Delivery, an EventBridge event id): longer than the sender retries",
    )
    aws: AwsAlertSettings = AwsAlertSettings()
    sns: SnsAlertSettings = SnsAlertSettings()
    alertmanager: AlertmanagerAlertSettings = AlertmanagerAlertSettings()
    github: GithubAlertSettings = GithubAlertSettings()
    generic: GenericAlertSettings = GenericAlertSettings()
    playbooks_dir: Path | None = Field(
        None, description="the playbooks (*.yaml); None: the defaults shipped in playbooks/"
    )
    incident_channel: str | None = Field(
        None,
        description="the Slack channel where alerts are told, asked about and narrated "
        "(None: the first of slack_app.allowed_channels)",
    )
    guards: GuardSettings = GuardSettings()


def enabled_sources(settings: AlertSettings) -> list[str]:
    """The sources that are configured (a secret, or SNS enabled with a topic)."""
    enabled = {
        "aws": settings.aws.api_key is not None,
        "sns": settings.sns.enabled and bool(settings.sns.topic_arns),
        "alertmanager": settings.alertmanager.bearer_token is not None,
        "github": settings.github.webhook_secret is not None,
        "generic": settings.generic.secret is not None,
    }
    return [name for name, on in enabled.items() if on]


def fresh_secrets() -> dict[str, Any]:
    """A profile's `alerts` section with a new secret for every source but SNS (which signs
    with certificates): what the sandbox writes, and a template for production."""
    import secrets

    return {
        "aws": {"api_key": secrets.token_urlsafe(32)},
        "alertmanager": {"bearer_token": secrets.token_urlsafe(32)},
        "github": {"webhook_secret": secrets.token_urlsafe(32)},
        "generic": {"secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()},
    }
