"""`POST /alerts/generic`: the documented body, signed with Standard Webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from killswitch.sandbox.senders import encode, generic_alert, generic_headers, new_generic_secret
from tests.killswitch.alerts.conftest import Door

LEAKED = "sk-ant-api03-" + "Q" * 80  # made up, of Anthropic's key shape


def test_agent_and_credentials_are_read(door: Door) -> None:
    body = encode(
        generic_alert(
            agent_id="agent-7",
            alert_id="det-1",
            credentials=[
                {"provider": "aws", "kind": "aws.access-key", "id": "AKIAIOSFODNN7EXAMPLE"},
                {"kind": "anthropic.api-key", "value": LEAKED},
            ],
        )
    )
    answer = door.post("generic", body, generic_headers(door.keys.generic, body))
    assert answer.status_code == 202, answer.text
    [alert] = door.handled
    assert (alert.alert_id, alert.agent_id, alert.severity) == ("det-1", "agent-7", 9.0)
    aws, anthropic = alert.credentials
    assert aws.identifier == "AKIAIOSFODNN7EXAMPLE" and aws.secret is None
    assert anthropic.provider == "anthropic"
    assert anthropic.secret is not None and anthropic.secret.get_secret_value() == LEAKED
    assert LEAKED not in repr(alert) + alert.summary + answer.text


def test_a_summary_or_label_holding_the_leaked_value_is_withheld(door: Door) -> None:
    payload = generic_alert(credentials=[{"kind": "anthropic.api-key", "value": LEAKED}])
    payload["summary"] = f"leaked: {LEAKED}"
    payload["labels"] = {"raw": LEAKED}
    body = encode(payload)
    assert door.post("generic", body, generic_headers(door.keys.generic, body)).status_code == 202
    [alert] = door.handled
    assert LEAKED not in alert.summary + json.dumps(dict(alert.labels))


def test_unsigned_forged_stale_and_replayed(door: Door) -> None:
    body = encode(generic_alert(agent_id="agent-7"))
    door.assert_refused(door.post("generic", body, {}), 401, "alert-unsigned")
    other_key = generic_headers(new_generic_secret(), body)
    door.assert_refused(door.post("generic", body, other_key), 401, "alert-forged")
    garbled = {**generic_headers(door.keys.generic, body), "webhook-signature": "v1,,x y"}
    door.assert_refused(door.post("generic", body, garbled), 401, "alert-forged")
    old = generic_headers(door.keys.generic, body, at=datetime.now(UTC) - timedelta(minutes=10))
    door.assert_refused(door.post("generic", body, old), 401, "alert-stale")
    future = generic_headers(door.keys.generic, body, at=datetime.now(UTC) + timedelta(minutes=10))
    door.assert_refused(door.post("generic", body, future), 401, "alert-stale")
    fresh = generic_headers(door.keys.generic, body)
    assert door.post("generic", body, fresh).status_code == 202
    door.handled.clear()
    door.assert_refused(door.post("generic", body, fresh), 409, "alert-replayed")


def test_the_documented_shape_is_strict(door: Door) -> None:
    for payload in (
        {"event": "x"},  # names neither an agent nor a credential
        {**generic_alert(agent_id="agent-7"), "unexpected": 1},
        generic_alert(agent_id="AGENT 7"),
        {**generic_alert(agent_id="agent-7"), "severity": 11},
        generic_alert(credentials=[{"provider": "aws"}]),
    ):
        body = encode(payload)
        answer = door.post("generic", body, generic_headers(door.keys.generic, body))
        door.assert_refused(answer, 422, "alert-malformed")
