"""`POST /alerts/aws`: EventBridge API destination events of the published shapes."""

from __future__ import annotations

import json

from killswitch.sandbox.senders import aws_headers, encode, guardduty_event, health_exposed_event
from tests.killswitch.alerts.conftest import Door

KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def test_health_exposed_key_names_the_key(door: Door) -> None:
    event = health_exposed_event(KEY_ID)
    answer = door.post("aws", encode(event), aws_headers(door.keys.aws))
    assert answer.status_code == 202, answer.text
    assert answer.json()["decision"] == "stub"
    [alert] = door.handled
    assert alert.source == "aws"
    assert alert.event == "AWS_RISK_CREDENTIALS_EXPOSED"
    assert alert.alert_id == event["detail"]["eventArn"]
    [credential] = alert.credentials
    assert (credential.provider, credential.identifier, credential.kind) == (
        "aws",
        KEY_ID,
        "aws.access-key",
    )
    assert credential.secret is None
    assert alert.labels["aws_account"] == "123456789012"
    assert KEY_ID in alert.summary


def test_guardduty_finding_carries_type_severity_and_key(door: Door) -> None:
    event = guardduty_event(KEY_ID, severity=8.0, user_name="agent-7-user")
    answer = door.post("aws", encode(event), aws_headers(door.keys.aws))
    assert answer.status_code == 202, answer.text
    [alert] = door.handled
    assert alert.event == "GuardDuty Finding"
    assert alert.finding_type == (
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    )
    assert alert.severity == 8.0
    assert alert.alert_id == event["detail"]["id"]
    assert alert.credentials[0].identifier == KEY_ID
    assert alert.labels["aws_user_name"] == "agent-7-user"
    assert alert.labels["aws_user_type"] == "IAMUser"


def test_unknown_fields_from_aws_are_ignored_not_refused(door: Door) -> None:
    event = health_exposed_event(KEY_ID)
    event["detail"]["somethingNew"] = {"added": "by AWS"}
    event["newTopLevel"] = 1
    assert door.post("aws", encode(event), aws_headers(door.keys.aws)).status_code == 202


def test_missing_or_wrong_api_key_is_refused_before_the_body_is_read(door: Door) -> None:
    not_json = b"{not json"
    door.assert_refused(door.post("aws", not_json, {}), 401, "alert-unsigned")
    door.assert_refused(
        door.post("aws", not_json, aws_headers("wrong-" + door.keys.aws)), 401, "alert-forged"
    )
    assert door.keys.aws not in json.dumps([str(r[1]) for r in door.refused])


def test_the_same_event_id_twice_is_a_replay(door: Door) -> None:
    body = encode(health_exposed_event(KEY_ID))
    assert door.post("aws", body, aws_headers(door.keys.aws)).status_code == 202
    door.handled.clear()
    door.assert_refused(door.post("aws", body, aws_headers(door.keys.aws)), 409, "alert-replayed")


def test_malformed_and_unsupported_events_are_refused(door: Door) -> None:
    headers = aws_headers(door.keys.aws)
    door.assert_refused(door.post("aws", b"[]", headers), 422, "alert-malformed")
    event = health_exposed_event(KEY_ID)
    event["source"] = "aws.ec2"
    door.assert_refused(door.post("aws", encode(event), headers), 422, "alert-malformed")
    finding = guardduty_event(KEY_ID, severity=8.0)
    finding["detail"]["severity"] = 99
    door.assert_refused(door.post("aws", encode(finding), headers), 422, "alert-malformed")
    del finding["detail"]["severity"]
    answer = door.post("aws", encode(finding), headers)
    door.assert_refused(answer, 422, "alert-malformed")
    assert "severity" in answer.json()["error"]


def test_a_session_key_or_a_sample_placeholder_has_no_kind(door: Door) -> None:
    for key_id in ("ASIAIOSFODNN7EXAMPLE", "GeneratedFindingAccessKeyId"):
        event = guardduty_event(key_id, user_type="AssumedRole")
        assert door.post("aws", encode(event), aws_headers(door.keys.aws)).status_code == 202
    session, placeholder = (a.credentials[0] for a in door.handled)
    assert (session.identifier, session.kind) == ("ASIAIOSFODNN7EXAMPLE", None)
    assert (placeholder.identifier, placeholder.kind) == ("GeneratedFindingAccessKeyId", None)
