"""The alert sources: each authenticates a request *before* it parses the body, then parses
the provider's real payload shape with pydantic into `Alert`s.

A source answers with `Admitted` (alerts for the handler, and the replay key to forget
should the handler fail) or `Answered` (a protocol message such as an SNS subscription
confirmation or a GitHub ping: nothing for the handler), or raises an `AlertRefusedError`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from killswitch.alerts.models import Alert
from killswitch.alerts.refusals import MalformedError, UnsupportedMediaError

M = TypeVar("M", bound=BaseModel)
CLAIM_LIMIT = 120


@dataclass(frozen=True, slots=True)
class Incoming:
    """One request as the receiver read it (header names lower-cased, the body in full)."""

    source: str
    headers: Mapping[str, str]
    body: bytes
    client: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Admitted:
    """Authenticated and parsed: the alerts for the handler."""

    alerts: tuple[Alert, ...]
    replay_key: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Answered:
    """Authenticated, but nothing for the handler (a confirmation, a ping, a resolved alert)."""

    body: dict[str, Any] = field(default_factory=dict)
    status: int = 200


class Source(Protocol):
    """What the receiver needs of a source."""

    name: str

    def disabled(self) -> str | None:
        """Why the source is not served (no secret configured), or None."""
        ...

    def claimed(self, incoming: Incoming) -> str:
        """What an unauthenticated request claims to be (from headers only), for the ledger."""
        ...

    def accept(self, incoming: Incoming) -> Admitted | Answered:
        """Authenticate, then parse; raises an AlertRefusedError."""
        ...


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def claim(value: str | None) -> str:
    """A header value cut to size and stripped of control characters, for a ledger line."""
    if not value:
        return "-"
    text = "".join(c if c.isprintable() else "?" for c in value[:CLAIM_LIMIT])
    return text or "-"


def text_of(body: bytes) -> str:
    """The body as text: it must be UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaError("the body is not UTF-8") from None


def parse(model: type[M], data: str | bytes | Any, what: str) -> M:
    """Validate `data` (JSON text or already-decoded JSON) as `model`; a MalformedError
    names the fields that are wrong, never their values."""
    try:
        if isinstance(data, (str, bytes)):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedError(f"{what}: {problems(exc)}") from None
    except (ValueError, RecursionError):
        raise MalformedError(f"{what}: not JSON") from None


def problems(exc: ValidationError, limit: int = 3) -> str:
    """The first few field errors, located but without the input values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object (anything else is malformed)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedError(f"{what}: not JSON") from None
    if not isinstance(value, dict):
        raise MalformedError(f"{what}: not a JSON object")
    return value


def shown(text: str | None, limit: int = 300) -> str:
    """Free text from a sender (an annotation, a detector's summary), cut to one line and
    withheld when it looks like secret material: it goes to the ledger and to Slack."""
    from killswitch.secret_shapes import looks_secret

    line = " ".join((text or "").split())[:limit]
    return "<withheld: it looked like secret material>" if looks_secret(line) else line
