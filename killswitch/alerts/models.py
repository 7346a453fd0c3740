"""What an alert says, once its source has been authenticated and its body parsed.

Plain frozen dataclasses (pydantic parsed the body at the edge, in `sources/`). A leaked
secret travels as a `SecretStr` and never reaches a summary, a repr or a fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from pydantic import SecretStr

SOURCES = ("aws", "sns", "alertmanager", "github", "generic")


@dataclass(frozen=True, slots=True)
class LeakedCredential:
    """One credential an alert names: by a non-secret identifier (an access key id, an
    accessor), by the leaked value itself (a secret-scanning alert), or both."""

    provider: str | None
    identifier: str | None
    secret: SecretStr | None = field(default=None, repr=False, compare=False)
    kind: str | None = None

    def __repr__(self) -> str:
        held = ", secret=<held>" if self.secret is not None else ""
        return (
            f"LeakedCredential(provider={self.provider!r}, identifier={self.identifier!r}, "
            f"kind={self.kind!r}{held})"
        )

    def describe(self) -> str:
        """One line without the secret: what the alert names."""
        what = self.kind or self.provider or "credential"
        if self.identifier:
            return f"{what} {self.identifier}"
        return f"{what} (leaked value, not shown)" if self.secret is not None else what


@dataclass(frozen=True, slots=True)
class Alert:
    """An authenticated, validated alert from one source."""

    source: str
    alert_id: str | None
    event: str
    finding_type: str | None
    severity: float | None
    agent_id: str | None
    environment: str | None
    credentials: tuple[LeakedCredential, ...]
    summary: str
    received_at: datetime
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.labels, MappingProxyType):
            object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def fingerprint(self) -> str:
        """A stable hash of what the alert says (never of a secret, nor of when it arrived):
        two copies of the same alert have the same fingerprint."""
        content = {
            "source": self.source,
            "event": self.event,
            "finding_type": self.finding_type,
            "severity": self.severity,
            "agent_id": self.agent_id,
            "environment": self.environment,
            "credentials": sorted(
                [c.provider or "", c.kind or "", c.identifier or "", c.secret is not None]
                for c in self.credentials
            ),
            "labels": sorted(self.labels.items()),
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def dedup_key(self) -> str:
        """The source's own id when it has one, else the content's fingerprint."""
        if self.alert_id:
            return f"{self.source}:{self.alert_id}"
        return f"{self.source}:fp:{self.fingerprint()}"
