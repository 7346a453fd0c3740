"""The receiver around the sources: unknown and disabled sources, the size limit, the
OpenAPI document, a failing handler, and a fuzz run that finds no 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from killswitch.alerts.models import SOURCES, Alert
from killswitch.alerts.receiver import app
from killswitch.alerts.refusals import AlertRefusedError
from killswitch.alerts.replay import SeenAlerts
from killswitch.alerts.settings import AlertSettings
from killswitch.inventory import Inventory
from killswitch.sandbox.senders import (
    aws_headers,
    encode,
    generic_alert,
    generic_headers,
    github_headers,
    health_exposed_event,
    secret_scanning_alert,
)
from tests.killswitch.alerts.conftest import Door, Secrets, alert_settings, open_door


def test_unknown_source_is_refused(door: Door) -> None:
    door.assert_refused(door.post("nope", b"{}", {}), 404, "alert-unknown-source")


def test_a_source_without_its_secret_is_disabled(tmp_path: Path) -> None:
    for door in open_door(tmp_path, AlertSettings()):
        for source in SOURCES:
            answer = door.post(source, b"{}", {})
            door.assert_refused(answer, 404, "alert-source-disabled")
            assert source in answer.json()["error"]


def test_oversized_bodies_are_refused_by_length_and_while_streaming(door: Door) -> None:
    limit = door.settings.max_body
    big = b"x" * (limit + 1)
    headers = github_headers(door.keys.github, big)
    door.assert_refused(door.post("github", big, headers), 413, "alert-too-large")

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 1024 + 2):
            yield b"y" * 1024

    answer = door.client.post("/alerts/github", content=chunks(), headers=headers)
    door.assert_refused(answer, 413, "alert-too-large")


def test_the_openapi_document_is_served(door: Door) -> None:
    answer = door.client.get("/alerts/openapi.json")
    assert answer.status_code == 200
    spec = answer.json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {f"/alerts/{s}" for s in SOURCES}
    assert "GenericAlert" in spec["components"]["schemas"]
    assert door.keys.github not in answer.text


def test_a_failing_handler_is_503_and_the_senders_retry_is_accepted(tmp_path: Path) -> None:
    keys = Secrets()
    failures = [RuntimeError("the pipeline is down")]
    handled: list[Alert] = []

    async def handle(alert: Alert) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        handled.append(alert)
        return {"ok": True}

    refused: list[AlertRefusedError] = []
    receiver = app(
        alert_settings(keys),
        handle=handle,
        refuse=lambda s, p, c, cl: refused.append(p),
        replay=SeenAlerts(Inventory(tmp_path / "inventory.db")),
    )
    body = encode(health_exposed_event("AKIAIOSFODNN7EXAMPLE"))
    with TestClient(receiver, raise_server_exceptions=False) as client:
        first = client.post("/alerts/aws", content=body, headers=aws_headers(keys.aws))
        assert first.status_code == 503 and first.json()["code"] == "alert-not-handled"
        retry = client.post("/alerts/aws", content=body, headers=aws_headers(keys.aws))
        assert retry.status_code == 202
    assert len(handled) == 1


def test_a_failing_ledger_still_answers_4xx(tmp_path: Path) -> None:
    def refuse(*args: object) -> None:
        raise OSError("disk full")

    async def handle(alert: Alert) -> dict[str, Any]:
        raise AssertionError("never")

    receiver = app(
        AlertSettings(),
        handle=handle,
        refuse=refuse,
        replay=SeenAlerts(Inventory(tmp_path / "inventory.db")),
    )
    with TestClient(receiver, raise_server_exceptions=False) as client:
        assert client.post("/alerts/aws", content=b"{}").status_code == 404


def test_refusals_never_carry_the_secrets(door: Door) -> None:
    leaked = "sk-ant-api03-" + "Z" * 80
    body = encode(generic_alert(credentials=[{"kind": "anthropic.api-key", "value": leaked}]))
    forged = generic_headers(door.keys.generic, body + b" ")
    answer = door.post("generic", body, forged)
    assert answer.status_code == 401
    bad = encode({**generic_alert(credentials=[{"value": leaked}]), "severity": 99})
    answer2 = door.post("generic", bad, generic_headers(door.keys.generic, bad))
    assert answer2.status_code == 422
    recorded = json.dumps([[s, p.message, c, cl] for s, p, c, cl in door.refused])
    for secret in (leaked, door.keys.generic, door.keys.aws, door.keys.github):
        assert secret not in answer.text + answer2.text + recorded


HEADER_NAMES = [
    "x-killswitch-key",
    "authorization",
    "x-hub-signature-256",
    "x-github-delivery",
    "x-github-event",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    source = draw(st.sampled_from([*SOURCES, "other"]))
    kind = draw(st.sampled_from(["json", "bytes", "real"]))
    if kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:  # a real payload, mutated
        real = draw(
            st.sampled_from(
                [
                    health_exposed_event("AKIAIOSFODNN7EXAMPLE"),
                    secret_scanning_alert(),
                    generic_alert(agent_id="agent-7"),
                ]
            )
        )
        key = draw(st.sampled_from(sorted(real)))
        real[key] = draw(JSON)
        body = encode(real)
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=5))
    headers.pop("content-length", None)
    return source, body, headers


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(), signed=st.booleans())
def test_no_input_is_answered_5xx(
    door: Door, request: tuple[str, bytes, dict[str, str]], signed: bool
) -> None:
    source, body, headers = request
    if signed:  # get past authentication so the parsers are fuzzed too
        headers = {
            **headers,
            **aws_headers(door.keys.aws),
            "authorization": f"Bearer {door.keys.alertmanager}",
            **github_headers(door.keys.github, body),
        }
        if _utf8(body):
            headers |= generic_headers(door.keys.generic, body)
    answer = door.post(source, body, headers)
    assert answer.status_code < 500 or answer.json()["code"] == "alert-certificate-unavailable"
    if answer.status_code >= 400:
        assert answer.json()["code"] != "alert-unreadable", answer.text
    door.handled.clear()


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_other_methods_are_refused_in_json(door: Door) -> None:
    answer = door.client.get("/alerts/aws")
    door.assert_refused(answer, 405, "alert-method-not-allowed")
    assert door.client.put("/alerts/github", content=b"{}").json()["code"] == (
        "alert-method-not-allowed"
    )
    assert door.client.get("/alerts/openapi.json").status_code == 200


def test_a_failing_replay_store_asks_the_sender_to_retry(tmp_path: Path) -> None:
    import sqlite3

    class LockedStore:
        def first_time(self, key: str, expires_at: float) -> bool:
            raise sqlite3.OperationalError("database is locked")

        def forget(self, key: str) -> None:
            raise AssertionError("never")

    keys = Secrets()

    async def handle(alert: Alert) -> dict[str, Any]:
        raise AssertionError("never")

    receiver = app(
        alert_settings(keys), handle=handle, refuse=lambda *a: None, replay=LockedStore()
    )
    body = encode(health_exposed_event("AKIAIOSFODNN7EXAMPLE"))
    with TestClient(receiver, raise_server_exceptions=False) as client:
        answer = client.post("/alerts/aws", content=body, headers=aws_headers(keys.aws))
    assert answer.status_code == 503 and answer.json()["code"] == "alert-not-handled"


def test_a_replay_store_in_postgres_that_is_down_asks_the_sender_to_retry(
    tmp_path: Path, pg_cluster: Any
) -> None:
    """The replay ids live in PostgreSQL with a database URL: the server down is the replay
    store's failure, not the request's (a 4xx would make the sender drop the alert)."""
    from killswitch.inventory_postgres import PostgresInventory

    keys = Secrets()
    handled: list[Alert] = []

    async def handle(alert: Alert) -> dict[str, Any]:
        handled.append(alert)
        return {"ok": True}

    url = pg_cluster.ensure_database("receiver_replay")
    inventory = PostgresInventory(url, tmp_path / "inventory.db", deadline_s=1.0)
    receiver = app(
        alert_settings(keys),
        handle=handle,
        refuse=lambda *a: None,
        replay=SeenAlerts(inventory),
    )
    body = encode(health_exposed_event("AKIAIOSFODNN7EXAMPLE"))
    with TestClient(receiver, raise_server_exceptions=False) as client:
        pg_cluster.stop("fast")
        try:
            answer = client.post("/alerts/aws", content=body, headers=aws_headers(keys.aws))
        finally:
            pg_cluster.start()
        assert answer.status_code == 503 and answer.json()["code"] == "alert-not-handled"
        retry = client.post("/alerts/aws", content=body, headers=aws_headers(keys.aws))
        assert retry.status_code == 202
    assert len(handled) == 1
    inventory.close()
