"""What the Azure stand-in remembers (service principals, their secrets, role
assignments, the kill switch's own app and tokens), and its three error shapes."""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

API_VERSION = "2022-04-01"
PAGE = 2  # small pages, so that clients must follow nextLink
ASSIGNMENTS = re.compile(
    r"^/*(?P<scope>subscriptions/[^/]+(?:/resourceGroups/[^/]+)?)"
    r"/providers/Microsoft\.Authorization/roleAssignments(?:/(?P<name>[^/?]+))?$"
)


@dataclass
class Secret:
    key_id: str
    value: str
    display_name: str
    start: str
    end: str

    def credential(self, with_text: bool = False) -> dict[str, Any]:
        shown = {
            "customKeyIdentifier": None,
            "displayName": self.display_name,
            "endDateTime": self.end,
            "hint": self.value[:3],
            "keyId": self.key_id,
            "startDateTime": self.start,
        }
        return {**shown, "secretText": self.value} if with_text else {**shown, "secretText": None}


@dataclass
class Principal:
    id: str
    app_id: str
    display_name: str
    tags: list[str]
    enabled: bool = True
    secrets: dict[str, Secret] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "accountEnabled": self.enabled,
            "servicePrincipalType": "Application",
            "tags": list(self.tags),
            "passwordCredentials": [s.credential() for s in self.secrets.values()],
        }


class AzureState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tenant_id = str(uuid.uuid4())
        self.subscription_id = str(uuid.uuid4())
        self.principals: dict[str, Principal] = {}
        self.assignments: dict[str, dict[str, Any]] = {}  # id (lower case) -> body
        self.tokens: dict[str, float] = {}  # access token -> expiry, of the kill switch only
        self.own_app_id = str(uuid.uuid4())  # the kill switch's own app, for ARM and Graph
        self.own_secret = secrets.token_urlsafe(30)
        self.base_url = ""

    def reset(self) -> None:
        """Forget every principal and assignment (the kill switch's own app stays)."""
        with self.lock:
            self.principals.clear()
            self.assignments.clear()

    def by_app(self, app_id: str) -> Principal | None:
        return next((p for p in self.principals.values() if p.app_id == app_id), None)


def graph_error(status: int, code: str, message: str) -> JSONResponse:
    """Microsoft Graph's error shape."""
    return JSONResponse(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"request-id": str(uuid.uuid4())},
            }
        },
        status_code=status,
    )


def missing(ident: str) -> str:
    """Graph's message for an object that does not exist."""
    return (
        f"Resource '{ident}' does not exist or one of its queried reference-property "
        "objects are not present."
    )


def arm_error(status: int, code: str, message: str) -> JSONResponse:
    """ARM's error shape."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def aad_error(state: AzureState, status: int, error: str, code: int, text: str) -> JSONResponse:
    """Entra's token-endpoint error shape (an `AADSTS` code in the description)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {now}",
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{state.base_url}/error?code={code}",
        },
        status_code=status,
    )
