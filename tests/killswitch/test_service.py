"""The service's door, in process: every odd request gets a 4xx with a reason, changes
nothing, and is ledgered — without letting a flood bury the ledger."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from killswitch import service
from killswitch.ledger import Ledger
from killswitch.runtime import Runtime
from killswitch.settings import Settings
from killswitch.slack_app import signing
from killswitch.slack_app.gate import MAX_BODY

pytestmark = pytest.mark.integration


@pytest.fixture
def app(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = Runtime.open(settings)
    try:
        yield TestClient(service.build(runtime)), runtime
    finally:
        runtime.close()


def secret(sandbox: dict[str, Any]) -> str:
    return str(sandbox["providers"]["slack"]["signing_secret"])


def command(text: str, user: str = "U0ONCALL001", channel: str = "C0INCIDENT") -> str:
    return urllib.parse.urlencode(
        {"command": "/killswitch", "text": text, "user_id": user, "channel_id": channel}
    )


def refusals(runtime: Runtime, actor_prefix: str) -> list[dict[str, Any]]:
    rows = Ledger(runtime.settings.ledger_file).rows()
    return [r for r in rows if r["outcome"] == "refused" and r["actor"].startswith(actor_prefix)]


def test_odd_bodies_get_a_4xx_with_a_reason(
    app: tuple[TestClient, Runtime], sandbox: dict[str, Any]
) -> None:
    client, runtime = app
    odd = {
        b"payload=%5B1%2C2%5D": 401,  # unsigned, a payload that is not an object
        b"payload=%7B%22user%22%3A7%7D": 401,
        b"text=contain+x&user_id=\xff\xfe": 401,  # not UTF-8
        b"": 401,
    }
    for body, status in odd.items():
        answer = client.post("/slack/events", content=body)
        assert answer.status_code == status and answer.json()["error"], body
    signed = "command=%2Fkillswitch&text=contain+x"  # signed, but no user or channel
    answer = client.post(
        "/slack/events", content=signed, headers=signing.headers(secret(sandbox), signed)
    )
    assert answer.status_code == 200 and "malformed slash command" in answer.text
    unrouted = "text=contain+x&user_id=U0NOBODY001"  # signed, but no command
    headers = signing.headers(secret(sandbox), unrouted)
    assert client.post("/slack/events", content=unrouted, headers=headers).status_code == 404
    assert refusals(runtime, "slack:unverified:U0NOBODY001")
    latin = "text=contain+x&user_id=U1".encode("latin-1") + b"\xe9"
    headers = signing.headers(secret(sandbox), latin.decode("latin-1"))
    assert client.post("/slack/events", content=latin, headers=headers).status_code == 401


def test_a_large_body_is_refused_before_it_is_read(app: tuple[TestClient, Runtime]) -> None:
    client, _ = app
    answer = client.post("/slack/events", content=b"x" * (MAX_BODY + 1))
    assert answer.status_code == 413 and "larger than" in answer.json()["error"]
    long_text = command("contain some-agent " + "why " * 400)
    headers = signing.headers("irrelevant", long_text)
    assert client.post("/slack/events", content=long_text, headers=headers).status_code == 401


def test_a_reason_may_say_payload(app: tuple[TestClient, Runtime], sandbox: dict[str, Any]) -> None:
    client, _ = app
    channel = sandbox["providers"]["slack"]["channel"]
    body = command("contain no-such-agent the payload of the leak was a key", channel=channel)
    answer = client.post(
        "/slack/events", content=body, headers=signing.headers(secret(sandbox), body)
    )
    # The command handler saw it (slack-bolt alone answers 404 for this body).
    assert answer.status_code == 200 and "not in the inventory" in answer.text


def test_a_replay_is_refused_by_another_replica_and_after_a_restart(
    settings: Settings, sandbox: dict[str, Any]
) -> None:
    body = command("status nobody-here")
    # Stamped two minutes ahead: still inside the window, so it must stay refused.
    headers = signing.headers(secret(sandbox), body, int(time.time()) + 120)
    first, second = Runtime.open(settings), Runtime.open(settings)
    try:
        one, two = TestClient(service.build(first)), TestClient(service.build(second))
        assert one.post("/slack/events", content=body, headers=headers).status_code == 200
        replayed = two.post("/slack/events", content=body, headers=headers)
        assert replayed.status_code == 401 and "replayed" in replayed.json()["error"]
    finally:
        first.close()
        second.close()


def test_a_flood_of_refusals_leaves_a_few_lines_and_a_count(
    app: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app
    flood = command("contain x", user="U0FLOOD0001")
    for _ in range(40):
        assert client.post("/slack/events", content=flood).status_code == 401
    lines = refusals(runtime, "slack:unverified:U0FLOOD0001")
    assert 1 <= len(lines) <= 5, len(lines)
