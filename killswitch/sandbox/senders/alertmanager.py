"""Prometheus Alertmanager's webhook sender: the version 4 payload and its bearer token."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def alertmanager_webhook(
    agent_id: str,
    *,
    alertname: str = "AgentExfiltration",
    severity: str = "critical",
    environment: str = "prod",
    status: str = "firing",
) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4 (the `webhook_config` payload)."""
    labels = {
        "alertname": alertname,
        "agent_id": agent_id,
        "severity": severity,
        "environment": environment,
    }
    started = datetime.now(UTC).isoformat()
    fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="' + alertname + '"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "killswitch",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{agent_id} is sending data to an unknown host"},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"{agent_id} is sending data to an unknown host"},
                "startsAt": started,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up",
                "fingerprint": fingerprint,
            }
        ],
    }


def alertmanager_headers(token: str) -> dict[str, str]:
    """Alertmanager's `http_config.authorization` (type Bearer)."""
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}
