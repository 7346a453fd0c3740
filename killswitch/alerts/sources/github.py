"""`POST /alerts/github`: the `secret_scanning_alert` organisation webhook, authenticated by
`X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the webhook secret, compared in
constant time), replay-checked on `X-GitHub-Delivery`.

What the payload carries: the alert's `number`, `secret_type`, `validity`, `url` (its REST
address), the repository and organisation — and **not the secret value**. GitHub's webhook
schema (`secret-scanning-alert-webhook`) has no `secret` field; the value is only in the REST
answer of `GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}` (a token with
"Secret scanning alerts: read"). The alert's REST address is kept in the label `alert_url`
for whoever fetches it; a body that does carry `alert.secret` (a REST alert relayed by a
detector of one's own) is read as probe material and never echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.alerts.refusals import (
    ForgedError,
    MalformedError,
    ReplayedError,
    UnsignedError,
)
from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.settings import GithubAlertSettings
from killswitch.alerts.sources import Admitted, Answered, Incoming, claim, parse, same

EVENT = "secret_scanning_alert"
# The actions that say a secret is (or may again be) out; the others (resolved, assigned,
# unassigned) are acknowledged and not handled.
ACTING = ("created", "reopened", "validated", "publicly_leaked")

# GitHub's secret_type prefixes → (provider, kind) where the kill switch has a revoker.
_PROVIDERS: tuple[tuple[str, str, str | None], ...] = (
    ("github_", "github", "github.token"),
    ("aws_", "aws", None),
    ("slack_", "slack", None),
    ("openai_", "openai", "openai.api-key"),
    ("anthropic_", "anthropic", "anthropic.api-key"),
    ("google_", "gcp", None),
    ("azure_", "azure", None),
    ("hashicorp_vault_", "vault", "vault.token"),
)


class _Provider(BaseModel):
    # GitHub adds fields to its webhooks without notice: read what we need, ignore the rest.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Provider):
    login: str = Field(max_length=100)


class Repository(_Provider):
    full_name: str = Field(max_length=300)
    private: bool | None = None


class SecretScanningAlert(_Provider):
    number: int = Field(ge=0)
    secret_type: str = Field(min_length=1, max_length=200)
    secret_type_display_name: str | None = Field(None, max_length=300)
    validity: Literal["active", "inactive", "unknown"] | None = None
    url: str | None = Field(None, max_length=2000)
    html_url: str | None = Field(None, max_length=2000)
    publicly_leaked: bool | None = None
    multi_repo: bool | None = None
    secret: SecretStr | None = Field(None, max_length=10_000)


class SecretScanningEvent(_Provider):
    action: str = Field(min_length=1, max_length=64)
    alert: SecretScanningAlert
    repository: Repository
    organization: Account | None = None


def provider_of(secret_type: str) -> tuple[str | None, str | None]:
    """The provider (and credential kind, when one fits) of a GitHub secret type."""
    for prefix, provider, kind in _PROVIDERS:
        if secret_type.startswith(prefix):
            return provider, kind
    return None, None


def signature_of(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` as GitHub computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class GithubSource:
    """GitHub organisation webhook → `POST /alerts/github`."""

    name = "github"

    def __init__(
        self, settings: GithubAlertSettings, replay: ReplayCache, retention_s: int
    ) -> None:
        self.settings = settings
        self.replay = replay
        self.retention_s = retention_s

    def disabled(self) -> str | None:
        """No webhook secret: the source is off."""
        if self.settings.webhook_secret is None:
            return "the github source has no webhook_secret configured"
        return None

    def claimed(self, incoming: Incoming) -> str:
        """The delivery and event GitHub's headers claim."""
        headers = incoming.headers
        return claim(
            f"{headers.get('x-github-event', '-')} delivery {headers.get('x-github-delivery', '-')}"
        )

    def accept(self, incoming: Incoming) -> Admitted | Answered:
        """Signature, then delivery id, then the payload."""
        assert self.settings.webhook_secret is not None  # noqa: S101  (disabled() said so)
        presented = incoming.headers.get("x-hub-signature-256")
        if not presented:
            raise UnsignedError("no X-Hub-Signature-256 header")
        expected = signature_of(self.settings.webhook_secret.get_secret_value(), incoming.body)
        if not same(presented.strip(), expected):
            raise ForgedError("X-Hub-Signature-256 does not match the webhook secret")
        delivery = incoming.headers.get("x-github-delivery", "").strip()
        if not delivery or len(delivery) > 100:
            raise MalformedError("no usable X-GitHub-Delivery header")
        event = incoming.headers.get("x-github-event", "")
        key = f"github:{delivery}"
        # GitHub signs no timestamp: a delivery id is remembered for replay_retention_s.
        if not self.replay.first_time(key, time.time() + self.retention_s):
            raise ReplayedError(f"GitHub delivery {claim(delivery)} was accepted before")
        if event == "ping":
            return Answered({"ok": True, "pong": True})
        if event != EVENT:
            return Answered({"ok": True, "ignored": f"event {claim(event)} is not read"})
        payload = parse(SecretScanningEvent, incoming.body, "secret_scanning_alert payload")
        if payload.action not in ACTING:
            return Answered({"ok": True, "ignored": f"action {claim(payload.action)}"})
        return Admitted((self._alert(payload, incoming),), replay_key=key)

    def _alert(self, payload: SecretScanningEvent, incoming: Incoming) -> Alert:
        found = payload.alert
        provider, kind = provider_of(found.secret_type)
        identifier = None
        if found.secret is not None and found.secret_type == "aws_access_key_id":  # noqa: S105
            identifier = found.secret.get_secret_value()  # a key id is not secret
        credential = LeakedCredential(
            provider=provider,
            identifier=identifier,
            secret=found.secret if identifier is None else None,
            kind=kind,
        )
        repo = payload.repository.full_name
        labels = {
            "repository": repo,
            "organization": payload.organization.login if payload.organization else "",
            "secret_type": found.secret_type,
            "validity": found.validity or "",
            "alert_number": str(found.number),
            "alert_url": found.url or "",
            "html_url": found.html_url or "",
            "publicly_leaked": "" if found.publicly_leaked is None else str(found.publicly_leaked),
            "action": payload.action,
            "secret_in_payload": str(found.secret is not None).lower(),
        }
        shown = found.secret_type_display_name or found.secret_type
        return Alert(
            source=self.name,
            alert_id=f"{repo}/secret-scanning/{found.number}",
            event=f"{EVENT}.{payload.action}",
            finding_type=found.secret_type,
            severity=None,
            agent_id=None,
            environment=None,
            credentials=(credential,),
            summary=f"GitHub secret scanning {payload.action}: {shown} in {repo} "
            f"(alert {found.number}, validity {found.validity or 'unknown'})"[:300],
            received_at=incoming.received_at,
            labels={k: v for k, v in labels.items() if v},
        )
