"""`POST /alerts/github`: `secret_scanning_alert` organisation webhooks, X-Hub-Signature-256."""

from __future__ import annotations

import json

import pytest

from killswitch.sandbox.senders import encode, github_headers, secret_scanning_alert
from tests.killswitch.alerts.conftest import Door

LEAKED = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # made up, of the PAT shape


def test_created_alert_names_the_type_and_where_to_fetch_the_value(door: Door) -> None:
    payload = secret_scanning_alert(number=7, repository="octo-org/agent-7")
    body = encode(payload)
    answer = door.post("github", body, github_headers(door.keys.github, body))
    assert answer.status_code == 202, answer.text
    [alert] = door.handled
    assert alert.event == "secret_scanning_alert.created"
    assert alert.finding_type == "github_personal_access_token"
    assert alert.alert_id == "octo-org/agent-7/secret-scanning/7"
    [credential] = alert.credentials
    assert (credential.provider, credential.kind) == ("github", "github.token")
    # GitHub's webhook does not carry the secret value: only its REST address.
    assert credential.secret is None and credential.identifier is None
    assert alert.labels["alert_url"].endswith("/repos/octo-org/agent-7/secret-scanning/alerts/7")
    assert alert.labels["secret_in_payload"] == "false"
    assert alert.labels["validity"] == "active"


def test_a_relayed_alert_with_the_value_is_probe_material_never_echoed(door: Door) -> None:
    body = encode(secret_scanning_alert(secret=LEAKED, action="validated"))
    answer = door.post("github", body, github_headers(door.keys.github, body))
    assert answer.status_code == 202
    [alert] = door.handled
    secret = alert.credentials[0].secret
    assert secret is not None and secret.get_secret_value() == LEAKED
    assert LEAKED not in repr(alert) + alert.summary + json.dumps(dict(alert.labels))
    assert LEAKED not in answer.text


def test_aws_key_id_type_is_an_identifier(door: Door) -> None:
    body = encode(
        secret_scanning_alert(secret_type="aws_access_key_id", secret="AKIAIOSFODNN7EXAMPLE")
    )
    assert door.post("github", body, github_headers(door.keys.github, body)).status_code == 202
    [credential] = door.handled[0].credentials
    assert (credential.provider, credential.identifier) == ("aws", "AKIAIOSFODNN7EXAMPLE")


def test_ping_and_other_actions_are_acknowledged_not_handled(door: Door) -> None:
    ping = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    answer = door.post("github", ping, github_headers(door.keys.github, ping, event="ping"))
    assert answer.status_code == 200 and answer.json()["pong"] is True
    resolved = encode(secret_scanning_alert(action="resolved"))
    answer = door.post("github", resolved, github_headers(door.keys.github, resolved))
    assert answer.status_code == 200 and "ignored" in answer.json()
    other = encode({"action": "opened"})
    answer = door.post("github", other, github_headers(door.keys.github, other, event="issues"))
    assert answer.status_code == 200
    assert door.handled == []


@pytest.mark.parametrize(
    "change",
    [
        lambda h: {k: v for k, v in h.items() if k != "x-hub-signature-256"},
        lambda h: {**h, "x-hub-signature-256": "sha256=" + "0" * 64},
        lambda h: {**h, "x-hub-signature-256": "sha1=abc"},
        lambda h: {**h, "x-hub-signature-256": h["x-hub-signature-256"].upper()},
    ],
)
def test_unsigned_or_forged_is_refused(door: Door, change: object) -> None:
    body = encode(secret_scanning_alert())
    headers = change(github_headers(door.keys.github, body))  # type: ignore[operator]
    answer = door.post("github", body, headers)
    assert answer.status_code == 401
    assert answer.json()["code"] in ("alert-unsigned", "alert-forged")
    assert door.handled == [] and door.refused
    assert door.keys.github not in answer.text


def test_a_changed_body_is_forged(door: Door) -> None:
    body = encode(secret_scanning_alert(repository="octo-org/a"))
    headers = github_headers(door.keys.github, body)
    changed = body.replace(b"octo-org/a", b"octo-org/b")
    door.assert_refused(door.post("github", changed, headers), 401, "alert-forged")


def test_the_same_delivery_twice_is_a_replay(door: Door) -> None:
    body = encode(secret_scanning_alert())
    headers = github_headers(door.keys.github, body)
    assert door.post("github", body, headers).status_code == 202
    door.handled.clear()
    door.assert_refused(door.post("github", body, headers), 409, "alert-replayed")


def test_signed_but_malformed(door: Door) -> None:
    for body in (b"{}", b"[1]", b"not json", encode({"action": "created", "alert": {}})):
        headers = github_headers(door.keys.github, body)
        door.assert_refused(door.post("github", body, headers), 422, "alert-malformed")
    body = encode(secret_scanning_alert())
    headers = {**github_headers(door.keys.github, body), "x-github-delivery": ""}
    door.assert_refused(door.post("github", body, headers), 422, "alert-malformed")
