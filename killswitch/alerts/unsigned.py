"""An alert body read as its source would parse it, without its signature: for
`killswitch playbook explain`, where the file is the operator's own and nothing is acted on.
Never used by the receiver (which authenticates before it parses)."""

from __future__ import annotations

from datetime import datetime

from killswitch.alerts.models import Alert
from killswitch.alerts.refusals import UnknownSourceError
from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources import Incoming, parse
from killswitch.alerts.sources.alertmanager import AlertmanagerSource, AlertmanagerWebhook
from killswitch.alerts.sources.aws import EventBridgeEvent, alert_of
from killswitch.alerts.sources.generic import GenericAlert, GenericSource
from killswitch.alerts.sources.github import GithubSource, SecretScanningEvent
from killswitch.alerts.sources.sns import SnsMessage


def unsigned(
    settings: AlertSettings, source: str, body: bytes, received_at: datetime
) -> tuple[Alert, ...]:
    """The alerts of `body` as `source` would read them once authenticated."""
    incoming = Incoming(source, {}, body, "file", received_at)
    if source == "aws":
        return (alert_of(parse(EventBridgeEvent, body, "EventBridge event"), source, received_at),)
    if source == "sns":
        message = parse(SnsMessage, body, "SNS message")
        event = parse(EventBridgeEvent, message.Message, "SNS Message (an EventBridge event)")
        return (alert_of(event, source, received_at),)
    if source == "alertmanager":
        webhook = parse(AlertmanagerWebhook, body, "Alertmanager webhook (version 4)")
        manager = AlertmanagerSource(settings.alertmanager)
        return tuple(manager._alert(webhook, a, incoming) for a in webhook.alerts)  # noqa: SLF001
    if source == "github":
        payload = parse(SecretScanningEvent, body, "secret_scanning_alert payload")
        github = GithubSource(settings.github, _NoReplay(), settings.replay_retention_s)
        return (github._alert(payload, incoming),)  # noqa: SLF001
    if source == "generic":
        generic = GenericSource(settings.generic, _NoReplay(), settings.replay_window_s)
        return (generic._alert(parse(GenericAlert, body, "generic alert"), incoming),)  # noqa: SLF001
    raise UnknownSourceError(f"no alert source {source[:40]!r}")


class _NoReplay:
    """Explain remembers nothing."""

    def first_time(self, key: str, expires_at: float) -> bool:
        return True

    def forget(self, key: str) -> None:
        return None
