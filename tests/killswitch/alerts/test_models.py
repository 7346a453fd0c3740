from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from killswitch.alerts.models import Alert, LeakedCredential

LEAKED = "ghp_" + "x" * 36  # a made-up token shape


def alert(**changes: object) -> Alert:
    values: dict[str, object] = {
        "source": "github",
        "alert_id": None,
        "event": "secret_scanning_alert.created",
        "finding_type": "github_personal_access_token",
        "severity": None,
        "agent_id": None,
        "environment": None,
        "credentials": (LeakedCredential("github", None, SecretStr(LEAKED), "github.token"),),
        "summary": "GitHub secret scanning created",
        "received_at": datetime.now(UTC),
        "labels": {"repository": "o/r"},
    }
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def test_fingerprint_is_stable_over_copies_and_ignores_arrival_and_secret_value() -> None:
    first = alert()
    later = alert(
        received_at=datetime.now(UTC) + timedelta(hours=1),
        credentials=(LeakedCredential("github", None, SecretStr("other"), "github.token"),),
    )
    assert first.fingerprint() == later.fingerprint()
    assert first.fingerprint() != alert(labels={"repository": "o/other"}).fingerprint()
    assert LEAKED not in first.fingerprint()


def test_dedup_key_prefers_the_source_id() -> None:
    assert alert(alert_id="o/r/secret-scanning/1").dedup_key == "github:o/r/secret-scanning/1"
    assert alert().dedup_key.startswith("github:fp:")


def test_no_secret_in_repr_summary_or_describe() -> None:
    a = alert()
    for text in (repr(a), str(a), a.summary, a.credentials[0].describe(), repr(a.credentials)):
        assert LEAKED not in text
    assert "<held>" in repr(a.credentials[0])


def test_labels_are_read_only() -> None:
    a = alert()
    with pytest.raises(TypeError):
        a.labels["x"] = "y"  # type: ignore[index]
