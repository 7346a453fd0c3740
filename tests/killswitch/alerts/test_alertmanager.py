"""`POST /alerts/alertmanager`: Alertmanager webhook version 4, bearer token."""

from __future__ import annotations

import copy
from pathlib import Path

from killswitch.sandbox.senders import alertmanager_headers, alertmanager_webhook, encode
from tests.killswitch.alerts.conftest import Door, Secrets, alert_settings, open_door


def test_firing_alert_names_the_agent_by_its_label(door: Door) -> None:
    payload = alertmanager_webhook("agent-7", severity="critical", environment="prod")
    answer = door.post(
        "alertmanager", encode(payload), alertmanager_headers(door.keys.alertmanager)
    )
    assert answer.status_code == 202, answer.text
    [alert] = door.handled
    assert (alert.agent_id, alert.environment, alert.severity) == ("agent-7", "prod", 9.0)
    assert alert.event == "AgentExfiltration"
    assert alert.alert_id and alert.alert_id.startswith(payload["alerts"][0]["fingerprint"])
    assert alert.credentials == ()


def test_each_firing_alert_of_a_group_is_one_alert_resolved_ones_are_not(door: Door) -> None:
    payload = alertmanager_webhook("agent-7")
    second = copy.deepcopy(payload["alerts"][0])
    second["labels"]["agent_id"] = "agent-8"
    second["fingerprint"] = "0123456789abcdef"
    resolved = copy.deepcopy(second)
    resolved["status"] = "resolved"
    resolved["labels"]["agent_id"] = "agent-9"
    payload["alerts"] += [second, resolved]
    answer = door.post(
        "alertmanager", encode(payload), alertmanager_headers(door.keys.alertmanager)
    )
    assert answer.status_code == 202
    assert [a.agent_id for a in door.handled] == ["agent-7", "agent-8"]
    assert len(answer.json()["alerts"]) == 2


def test_all_resolved_is_acknowledged(door: Door) -> None:
    payload = alertmanager_webhook("agent-7", status="resolved")
    answer = door.post(
        "alertmanager", encode(payload), alertmanager_headers(door.keys.alertmanager)
    )
    assert answer.status_code == 202 and answer.json()["ignored"]
    assert door.handled == []


def test_the_agent_label_is_a_setting(tmp_path: Path) -> None:
    keys = Secrets()
    settings = alert_settings(
        keys, alertmanager={"bearer_token": keys.alertmanager, "agent_label": "agent"}
    )
    payload = alertmanager_webhook("agent-7")
    payload["alerts"][0]["labels"]["agent"] = "agent-42"
    for door in open_door(tmp_path, settings, keys=keys):
        answer = door.post("alertmanager", encode(payload), alertmanager_headers(keys.alertmanager))
        assert answer.status_code == 202
        assert door.handled[0].agent_id == "agent-42"


def test_bearer_token_is_required_and_compared(door: Door) -> None:
    body = encode(alertmanager_webhook("agent-7"))
    door.assert_refused(door.post("alertmanager", body, {}), 401, "alert-unsigned")
    basic = {"authorization": "Basic " + door.keys.alertmanager}
    door.assert_refused(door.post("alertmanager", body, basic), 401, "alert-unsigned")
    wrong = alertmanager_headers(door.keys.alertmanager + "x")
    door.assert_refused(door.post("alertmanager", body, wrong), 401, "alert-forged")


def test_other_versions_and_shapes_are_malformed(door: Door) -> None:
    headers = alertmanager_headers(door.keys.alertmanager)
    payload = alertmanager_webhook("agent-7")
    for broken in ({**payload, "version": "3"}, {**payload, "alerts": "x"}, {"alerts": []}):
        door.assert_refused(
            door.post("alertmanager", encode(broken), headers), 422, "alert-malformed"
        )


def test_an_annotation_holding_a_secret_is_withheld(door: Door) -> None:
    payload = alertmanager_webhook("agent-7")
    leaked = "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    payload["alerts"][0]["annotations"]["summary"] = f"found {leaked}"
    answer = door.post(
        "alertmanager", encode(payload), alertmanager_headers(door.keys.alertmanager)
    )
    assert answer.status_code == 202
    assert "wJalrXUtnFEMI" not in door.handled[0].summary
