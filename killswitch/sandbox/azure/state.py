"""What the Azure stand-in remembers (service principals and their applications, their
secrets, groups, role assignments, the kill switch's own app and tokens), its fault and
propagation modes, and its three error shapes."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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

    @classmethod
    def new(cls, display_name: str) -> Secret:
        """A fresh client secret valid for a year (what addPassword makes)."""
        now = datetime.now(UTC)
        return cls(
            key_id=str(uuid.uuid4()),
            value=secrets.token_urlsafe(30).replace("-", "~")[:40],
            display_name=display_name,
            start=now.isoformat().replace("+00:00", "Z"),
            end=(now + timedelta(days=365)).isoformat().replace("+00:00", "Z"),
        )

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


@dataclass
class Application:
    """The app registration behind a service principal: its own secrets and certificates."""

    id: str
    app_id: str
    display_name: str
    passwords: dict[str, Secret] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # keyCredential bodies

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "signInAudience": "AzureADMyOrg",
            "passwordCredentials": [s.credential() for s in self.passwords.values()],
            "keyCredentials": list(self.keys.values()),
        }


@dataclass
class Group:
    id: str
    display_name: str
    members: list[str] = field(default_factory=list)  # object ids: principals or groups

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "securityEnabled": True,
            "mailEnabled": False,
            "groupTypes": [],
        }


@dataclass
class Fault:
    """The token endpoint's answer to one app for the next `count` requests (None: all)."""

    code: int
    count: int | None
    status: int = 400


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
        self.applications: dict[str, Application] = {}
        self.groups: dict[str, Group] = {}
        self.faults: dict[str, Fault] = {}  # app id -> the token endpoint's fault for it
        # Propagation: a disabled principal or a removed secret keeps getting tokens for this
        # long after the change (Entra replicates to its token service across regions).
        self.propagation_s = 0.0
        self.disabled_at: dict[str, float] = {}  # principal id -> when it was disabled
        self.removed: list[tuple[str, str, float]] = []  # (app id, secret value, when)

    def reset(self) -> None:
        """Forget every principal, application, group and assignment, and every mode (the
        kill switch's own app stays)."""
        with self.lock:
            self.principals.clear()
            self.assignments.clear()
            self.applications.clear()
            self.groups.clear()
            self.faults.clear()
            self.propagation_s = 0.0
            self.disabled_at.clear()
            self.removed.clear()

    def by_app(self, app_id: str) -> Principal | None:
        return next((p for p in self.principals.values() if p.app_id == app_id), None)

    def application_of(self, app_id: str) -> Application | None:
        return next((a for a in self.applications.values() if a.app_id == app_id), None)

    def groups_of(self, object_id: str) -> set[str]:
        """Every group `object_id` is a member of, directly or through nested groups."""
        found: set[str] = set()
        frontier = {object_id}
        while frontier:
            step = {g.id for g in self.groups.values() if frontier & set(g.members)} - found
            found |= step
            frontier = step
        return found

    def still_propagating(self, since: float | None) -> bool:
        """A change made at `since` has not reached the token service yet."""
        return since is not None and time.time() - since < self.propagation_s


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
