"""`POST /alerts/sns`: SNS HTTPS deliveries, signed (SignatureVersion 1 and 2) with a
certificate from an allowed SNS host."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from killswitch.alerts.settings import AlertSettings
from killswitch.sandbox.senders import (
    SnsSigner,
    guardduty_event,
    health_exposed_event,
    sns_headers,
)
from tests.killswitch.alerts.conftest import TOPIC, Door, Secrets, alert_settings, open_door

KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def deliver(door: Door, message: dict[str, Any]) -> Any:
    return door.post("sns", json.dumps(message).encode(), sns_headers(message))


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_notification_carries_the_eventbridge_event(door: Door, version: str) -> None:
    message = door.signer.notification(TOPIC, health_exposed_event(KEY_ID), version=version)
    answer = deliver(door, message)
    assert answer.status_code == 202, answer.text
    [alert] = door.handled
    assert alert.source == "sns"
    assert alert.event == "AWS_RISK_CREDENTIALS_EXPOSED"
    assert alert.credentials[0].identifier == KEY_ID


def test_notification_with_a_subject_is_signed_over_it(door: Door) -> None:
    event = guardduty_event(KEY_ID)
    message = door.signer.notification(TOPIC, event, subject="GuardDuty finding")
    assert deliver(door, message).status_code == 202
    tampered = {**door.signer.notification(TOPIC, event, subject="a"), "Subject": "b"}
    door.handled.clear()
    door.assert_refused(deliver(door, tampered), 401, "alert-forged")


def test_a_changed_message_is_forged(door: Door) -> None:
    message = door.signer.notification(TOPIC, health_exposed_event(KEY_ID))
    other = json.dumps(health_exposed_event("AKIAOTHERKEY0000000X"))
    door.assert_refused(deliver(door, {**message, "Message": other}), 401, "alert-forged")


def test_another_keys_signature_is_forged(door: Door) -> None:
    impostor = SnsSigner(door.signer.cert_url)  # same URL, its own key
    message = impostor.notification(TOPIC, health_exposed_event(KEY_ID))
    door.assert_refused(deliver(door, message), 401, "alert-forged")


def test_topic_and_certificate_host_must_be_allowed(door: Door) -> None:
    other_topic = door.signer.notification(
        "arn:aws:sns:us-east-1:999999999999:evil", health_exposed_event(KEY_ID)
    )
    door.assert_refused(deliver(door, other_topic), 403, "alert-not-allowed")
    for url in (
        "https://evil.example.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
    ):
        message = SnsSigner(url).notification(TOPIC, health_exposed_event(KEY_ID))
        door.assert_refused(deliver(door, message), 403, "alert-not-allowed")


def test_stale_timestamp_and_replayed_message_id_are_refused(door: Door) -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message = door.signer.notification(TOPIC, health_exposed_event(KEY_ID))
    stale = door.signer.sign({**message, "Timestamp": old})
    door.assert_refused(deliver(door, stale), 401, "alert-stale")
    assert deliver(door, message).status_code == 202
    door.handled.clear()
    door.assert_refused(deliver(door, message), 409, "alert-replayed")


def test_unsigned_and_malformed(door: Door) -> None:
    message = door.signer.notification(TOPIC, health_exposed_event(KEY_ID))
    door.assert_refused(deliver(door, {**message, "Signature": "!!!"}), 401, "alert-unsigned")
    no_signature = {k: v for k, v in message.items() if k != "Signature"}
    door.assert_refused(deliver(door, no_signature), 422, "alert-malformed")
    door.assert_refused(deliver(door, {**message, "SignatureVersion": "3"}), 422, "alert-malformed")
    not_an_event = door.signer.sign({**message, "Message": "hello"})
    door.assert_refused(deliver(door, not_an_event), 422, "alert-malformed")


def test_subscription_confirmation_is_confirmed_on_an_sns_host_only(tmp_path: Path) -> None:
    signer = SnsSigner()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return signer.fetch(url) if url == signer.cert_url else b"<ConfirmSubscriptionResponse/>"

    for door in open_door(tmp_path, fetch=fetch, signer=signer):
        message = signer.subscription_confirmation(TOPIC)
        answer = deliver(door, message)
        assert answer.status_code == 200, answer.text
        assert answer.json()["confirmed"] == TOPIC
        assert message["SubscribeURL"] in fetched
        assert door.handled == []

        elsewhere = signer.subscription_confirmation(
            TOPIC, subscribe_url="https://evil.example.com/?Action=ConfirmSubscription"
        )
        door.assert_refused(deliver(door, elsewhere), 403, "alert-not-allowed")
        assert elsewhere["SubscribeURL"] not in fetched
        wrong_topic = signer.subscription_confirmation(
            TOPIC,
            subscribe_url="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
            "&TopicArn=arn:aws:sns:us-east-1:123456789012:other",
        )
        door.assert_refused(deliver(door, wrong_topic), 403, "alert-not-allowed")
        assert len(fetched) == 2  # the certificate (cached) and the one confirmation


def test_confirmation_can_be_turned_off(tmp_path: Path) -> None:
    keys = Secrets()
    settings = alert_settings(
        keys, sns={"enabled": True, "topic_arns": [TOPIC], "confirm_subscriptions": False}
    )
    for door in open_door(tmp_path, settings):
        answer = deliver(door, door.signer.subscription_confirmation(TOPIC))
        assert answer.status_code == 200
        assert answer.json()["confirmed"] is False


def test_disabled_without_topics(tmp_path: Path) -> None:
    for door in open_door(tmp_path, AlertSettings()):
        message = door.signer.notification(TOPIC, health_exposed_event(KEY_ID))
        door.assert_refused(deliver(door, message), 404, "alert-source-disabled")


def test_unreachable_certificate_host_asks_sns_to_retry(door: Door) -> None:
    lost = SnsSigner("https://sns.us-east-1.amazonaws.com/missing.pem")
    answer = deliver(door, lost.notification(TOPIC, health_exposed_event(KEY_ID)))
    assert answer.status_code == 503
    assert answer.json()["code"] == "alert-certificate-unavailable"
    assert door.handled == []
