"""`POST /alerts/alertmanager`: Prometheus Alertmanager's webhook (payload version 4),
authenticated by the bearer token of the receiver's `http_config.authorization`.

One notification carries a group of alerts: each *firing* alert becomes one `Alert`, its
agent named by a label (`agent_label`, default `agent_id`). Resolved alerts are
acknowledged and not handled. Alertmanager signs nothing and stamps no request, so there
is no replay check here: a repeated notification has the same `fingerprint` and `startsAt`,
which make the alert id the lead's dedup uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from killswitch.alerts.models import Alert
from killswitch.alerts.refusals import ForgedError, MalformedError, UnsignedError
from killswitch.alerts.settings import AlertmanagerAlertSettings
from killswitch.alerts.sources import Admitted, Answered, Incoming, claim, parse, same, shown

SEVERITIES = {
    "critical": 9.0,
    "page": 9.0,
    "high": 7.0,
    "error": 7.0,
    "major": 7.0,
    "warning": 5.0,
    "medium": 5.0,
    "minor": 3.0,
    "low": 3.0,
    "info": 1.0,
    "none": 0.0,
}
MAX_LABELS = 64


class _Provider(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


Labels = dict[str, str]


class AlertmanagerAlert(_Provider):
    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    annotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    startsAt: datetime | None = None  # noqa: N815  (Alertmanager's names)
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str | None = Field(None, max_length=2000)  # noqa: N815
    fingerprint: str | None = Field(None, max_length=64)


class AlertmanagerWebhook(_Provider):
    version: Literal["4"]
    groupKey: str = Field(max_length=2000)  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=200)
    groupLabels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    commonLabels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    commonAnnotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    externalURL: str | None = Field(None, max_length=2000)  # noqa: N815
    alerts: tuple[AlertmanagerAlert, ...] = Field(max_length=1000)


def severity_of(value: str | None) -> float | None:
    """A severity label on the 0–10 scale: a name Alertmanager users use, or a number."""
    if not value:
        return None
    named = SEVERITIES.get(value.strip().lower())
    if named is not None:
        return named
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number <= 10 else None


class AlertmanagerSource:
    """Alertmanager `webhook_configs` → `POST /alerts/alertmanager`."""

    name = "alertmanager"

    def __init__(self, settings: AlertmanagerAlertSettings) -> None:
        self.settings = settings

    def disabled(self) -> str | None:
        """No bearer token: the source is off."""
        if self.settings.bearer_token is None:
            return "the alertmanager source has no bearer_token configured"
        return None

    def claimed(self, incoming: Incoming) -> str:
        """Alertmanager names itself in its user agent only."""
        return claim(incoming.headers.get("user-agent"))

    def accept(self, incoming: Incoming) -> Admitted | Answered:
        """Bearer token, then the webhook payload."""
        assert self.settings.bearer_token is not None  # noqa: S101  (disabled() said so)
        authorization = incoming.headers.get("authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        if not authorization or scheme.lower() != "bearer" or not token.strip():
            raise UnsignedError("no Authorization: Bearer header")
        if not same(token.strip(), self.settings.bearer_token.get_secret_value()):
            raise ForgedError("the bearer token does not match")
        webhook = parse(AlertmanagerWebhook, incoming.body, "Alertmanager webhook (version 4)")
        firing = [a for a in webhook.alerts if a.status == "firing"]
        if not firing:
            return Answered({"ok": True, "ignored": "no firing alerts"}, status=202)
        return Admitted(
            tuple(self._alert(webhook, a, incoming) for a in firing),
            note=f"{webhook.truncatedAlerts} alerts truncated by Alertmanager"
            if webhook.truncatedAlerts
            else "",
        )

    def _alert(
        self, webhook: AlertmanagerWebhook, fired: AlertmanagerAlert, incoming: Incoming
    ) -> Alert:
        labels = {**webhook.commonLabels, **fired.labels}
        annotations = {**webhook.commonAnnotations, **fired.annotations}
        name = labels.get("alertname", "")
        if not name:
            raise MalformedError("a firing alert has no alertname label")
        agent = labels.get(self.settings.agent_label) or None
        alert_id = None
        if fired.fingerprint:
            started = fired.startsAt.isoformat() if fired.startsAt else "-"
            alert_id = f"{fired.fingerprint}@{started}"
        text = annotations.get("summary") or annotations.get("description") or name
        return Alert(
            source=self.name,
            alert_id=alert_id,
            event=name[:200],
            finding_type=None,
            severity=severity_of(labels.get(self.settings.severity_label)),
            agent_id=agent[:64] if agent else None,
            environment=(labels.get(self.settings.environment_label) or None),
            credentials=(),
            summary=f"Alertmanager {claim(name)}: {shown(text)}",
            received_at=incoming.received_at,
            labels={k[:100]: shown(v, 200) for k, v in labels.items()},
        )
