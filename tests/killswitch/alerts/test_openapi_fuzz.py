"""schemathesis against the receiver's own OpenAPI document: bodies generated from each
source's schema, sent as they come (unsigned) and signed with the source's real scheme (so
the parsers behind authentication are fuzzed too). No answer is a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis")

from killswitch.sandbox.senders import (  # noqa: E402
    alertmanager_headers,
    aws_headers,
    generic_headers,
    github_headers,
)
from tests.killswitch.alerts.conftest import Door, open_door  # noqa: E402


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    yield from open_door(tmp_path_factory.mktemp("fuzz"))


def signed(door: Door, source: str, body: bytes) -> dict[str, str]:
    if source == "aws":
        return aws_headers(door.keys.aws)
    if source == "alertmanager":
        return alertmanager_headers(door.keys.alertmanager)
    if source == "github":
        return github_headers(door.keys.github, body)
    if source == "generic":
        return generic_headers(door.keys.generic, body)
    return {}  # sns signs inside the body


def strategies(door: Door) -> Any:
    loaded = schemathesis.openapi.from_asgi("/alerts/openapi.json", door.client.app)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == 5
    return st.one_of([operation.as_strategy() for operation in operations])


@pytest.mark.slow
def test_no_5xx(fuzzed: Door) -> None:
    @given(case=strategies(fuzzed))
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def run(case: Any) -> None:
        answer = case.call()
        assert answer.status_code < 500, answer.text
        source = case.path.rsplit("/", 1)[-1]
        body = json.dumps(case.body).encode() if case.body is not None else b""
        answer = fuzzed.post(source, body, signed(fuzzed, source, body))
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert answer.json()["code"] != "alert-unreadable", answer.text
        fuzzed.handled.clear()

    run()
