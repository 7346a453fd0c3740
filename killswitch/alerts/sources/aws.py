"""`POST /alerts/aws`: EventBridge events delivered by an API destination, authenticated by
the connection's API-key header (constant-time compare), replay-checked on the event id.

The events (also what `sns` carries in its `Message`): AWS Health's
`AWS_RISK_CREDENTIALS_EXPOSED` (the exposed access key id in
`detail.affectedEntities[].entityValue`) and GuardDuty findings (`detail.type`,
`detail.severity`, the key in `detail.resource.accessKeyDetails`).

Provider payloads are parsed with `extra="ignore"`: AWS adds fields to its events without
notice, and refusing a real alert for a field we do not read would be the wrong failure.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.alerts.refusals import (
    ForgedError,
    MalformedError,
    ReplayedError,
    UnsignedError,
)
from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.settings import AwsAlertSettings
from killswitch.alerts.sources import Admitted, Incoming, claim, parse, same

HEALTH_EXPOSED = "AWS_RISK_CREDENTIALS_EXPOSED"
ACCESS_KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z0-9]{12,124}")
TEXT_LIMIT = 300


class _Provider(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class HealthEntity(_Provider):
    entityValue: str | None = Field(None, max_length=1224)  # noqa: N815  (AWS's names)


class HealthDescription(_Provider):
    language: str | None = None
    latestDescription: str | None = None  # noqa: N815


class HealthDetail(_Provider):
    """`detail` of an `AWS Health Event`."""

    eventArn: str = Field(max_length=1600)  # noqa: N815
    service: str | None = None
    eventTypeCode: str = Field(min_length=1, max_length=200)  # noqa: N815
    eventTypeCategory: str | None = None  # noqa: N815
    affectedEntities: tuple[HealthEntity, ...] = ()  # noqa: N815
    eventDescription: tuple[HealthDescription, ...] = ()  # noqa: N815


class AccessKeyDetails(_Provider):
    accessKeyId: str | None = Field(None, max_length=128)  # noqa: N815
    principalId: str | None = Field(None, max_length=256)  # noqa: N815
    userName: str | None = Field(None, max_length=256)  # noqa: N815
    userType: str | None = Field(None, max_length=64)  # noqa: N815


class GuardDutyResource(_Provider):
    resourceType: str | None = None  # noqa: N815
    accessKeyDetails: AccessKeyDetails | None = None  # noqa: N815


class GuardDutyDetail(_Provider):
    """`detail` of a `GuardDuty Finding` (the finding itself)."""

    id: str = Field(min_length=1, max_length=300)
    type: str = Field(min_length=1, max_length=300)
    severity: float = Field(ge=0, le=10)
    accountId: str | None = None  # noqa: N815
    region: str | None = None
    title: str | None = None
    resource: GuardDutyResource = GuardDutyResource()


class EventBridgeEvent(_Provider):
    """The EventBridge envelope."""

    version: str | None = None
    id: str = Field(min_length=1, max_length=200)
    detail_type: str = Field(alias="detail-type", min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    account: str | None = Field(None, max_length=32)
    time: datetime | None = None
    region: str | None = Field(None, max_length=64)
    resources: tuple[str, ...] = ()
    replay_name: str | None = Field(None, alias="replay-name")
    detail: dict[str, Any]


def _cut(text: str | None) -> str:
    return (text or "").replace("\n", " ")[:TEXT_LIMIT]


def _access_key(key_id: str | None) -> LeakedCredential | None:
    if not key_id:
        return None
    # A long-term key (AKIA…) is an `aws.access-key`; a session key (ASIA…) or a sample
    # finding's placeholder is named as it came, without a kind.
    kind = "aws.access-key" if ACCESS_KEY_ID.fullmatch(key_id) and key_id[:4] == "AKIA" else None
    return LeakedCredential(provider="aws", identifier=key_id, secret=None, kind=kind)


def alert_of(event: EventBridgeEvent, source: str, received_at: datetime) -> Alert:
    """The `Alert` an AWS Health or GuardDuty event says; other events are malformed here
    (the EventBridge rule should not send them)."""
    labels = {"aws_account": event.account or "", "aws_region": event.region or ""}
    labels["eventbridge_id"] = event.id
    if event.replay_name:
        labels["eventbridge_replay"] = event.replay_name
    if event.source == "aws.health":
        health = parse(HealthDetail, event.detail, "detail (AWS Health)")
        credentials: tuple[LeakedCredential, ...] = ()
        if health.eventTypeCode == HEALTH_EXPOSED:
            keys = [e.entityValue for e in health.affectedEntities if e.entityValue]
            credentials = tuple(c for k in keys if (c := _access_key(k)) is not None)
        named = ", ".join(c.describe() for c in credentials) or "no access key named"
        return Alert(
            source=source,
            alert_id=health.eventArn,
            event=health.eventTypeCode,
            finding_type=health.eventTypeCategory,
            severity=None,
            agent_id=None,
            environment=None,
            credentials=credentials,
            summary=_cut(
                f"AWS Health {health.eventTypeCode}: {named} (account {event.account or '?'})"
            ),
            received_at=received_at,
            labels={k: v for k, v in labels.items() if v},
        )
    if event.source == "aws.guardduty":
        finding = parse(GuardDutyDetail, event.detail, "detail (GuardDuty finding)")
        details = finding.resource.accessKeyDetails or AccessKeyDetails()
        credential = _access_key(details.accessKeyId)
        labels |= {
            "aws_user_name": details.userName or "",
            "aws_user_type": details.userType or "",
            "aws_principal_id": details.principalId or "",
            "guardduty_resource_type": finding.resource.resourceType or "",
        }
        return Alert(
            source=source,
            alert_id=finding.id,
            event=event.detail_type,
            finding_type=finding.type,
            severity=finding.severity,
            agent_id=None,
            environment=None,
            credentials=(credential,) if credential else (),
            summary=_cut(f"GuardDuty {finding.type} ({finding.severity:g}): {finding.title}"),
            received_at=received_at,
            labels={k: v for k, v in labels.items() if v},
        )
    raise MalformedError(
        f"unsupported EventBridge source {claim(event.source)!r} "
        "(aws.health and aws.guardduty are read)"
    )


class AwsSource:
    """EventBridge API destination → `POST /alerts/aws`."""

    name = "aws"

    def __init__(self, settings: AwsAlertSettings, replay: ReplayCache, retention_s: int) -> None:
        self.settings = settings
        self.replay = replay
        self.retention_s = retention_s

    def disabled(self) -> str | None:
        """No API key: the source is off."""
        if self.settings.api_key is None:
            return "the aws source has no api_key configured (settings.alerts.aws.api_key)"
        return None

    def claimed(self, incoming: Incoming) -> str:
        """EventBridge sends no id in its headers: the user agent is all there is."""
        return claim(incoming.headers.get("user-agent"))

    def accept(self, incoming: Incoming) -> Admitted:
        """API key, then the event; its id must be new."""
        assert self.settings.api_key is not None  # noqa: S101  (disabled() said so)
        presented = incoming.headers.get(self.settings.header)
        if presented is None:
            raise UnsignedError(f"no {self.settings.header} header")
        if not same(presented, self.settings.api_key.get_secret_value()):
            raise ForgedError(f"the {self.settings.header} header does not match the api key")
        event = parse(EventBridgeEvent, incoming.body, "EventBridge event")
        alert = alert_of(event, self.name, incoming.received_at)
        key = f"aws:{event.id}"
        # EventBridge retries a failed delivery for up to 24 hours with the same event id.
        if not self.replay.first_time(key, time.time() + self.retention_s):
            raise ReplayedError(f"EventBridge event {claim(event.id)} was accepted before")
        return Admitted((alert,), replay_key=key)
