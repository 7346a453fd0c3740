"""IAM's propagation delay, in the `aws` fault proxy in front of moto (which applies every
change at once).

Real IAM is eventually consistent the way a cache at the edge is: the control plane shows a
change at once (`GetUser`, `ListAccessKeys` by an administrator read the new state), while
the servers that authenticate and authorize requests keep their old view of a key for a
while. So the delay belongs to the requests *signed with the affected key*, not to IAM's
reads: per access key id (the SigV4 `Credential=AKID/…` of the Authorization header) the
layer remembers the last successful answer to each read call, and it notes when each IAM
write through the proxy (`UpdateAccessKey`, `DeleteAccessKey`, `PutUserPolicy`,
`PutRolePolicy`, …) changed a user, a role or a key. When moto refuses a key that worked
before, the change that did it is the first one to the key or its principal (moto's own
state says whose key it is) since the key last worked; for `seconds` from that change,
moto's refusals of the key's reads are replaced by the remembered success, as a stale edge
would answer — so the delay is measured from the containment call, as at AWS. With
`flap`, the first refusal goes through, and the stale answers follow it: a rejection, then
acceptances, then the rejection for good.

What it cannot show: writes signed by a lagging key are refused at once (a stale edge would
let them through), and a key whose reads never succeeded before the change has nothing to
replay. A success from moto (a restore) ends the key's lag.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from killswitch.sandbox.tokens import Lag

ACCOUNT = "123456789012"  # the sandbox's account (fleet.ACCOUNT; not imported: boto3-free)

CREDENTIAL = re.compile(rb"Credential=([A-Z0-9]{16,128})/")
REFUSALS = (
    b"InvalidClientTokenId",
    b"AccessDenied",
    b"InvalidAccessKeyId",
    b"ExpiredToken",
    b"UnrecognizedClient",
)
READS = ("Get", "List", "Describe")


def _key_id(head: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            found = CREDENTIAL.search(value)
            return found.group(1).decode() if found else None
    return None


def _params(head: bytes, body: bytes) -> tuple[bytes, str, dict[str, list[str]]]:
    method, _, rest = head.partition(b" ")
    parts = urlsplit(rest.split(b" ", 1)[0].decode("latin-1"))
    params = parse_qs(parts.query)
    if method == b"POST":
        params.update(parse_qs(body.decode("latin-1")))
    return method, parts.path, params


def operation(head: bytes, body: bytes) -> str | None:
    """The call a request makes ("GetUser", "GET /"), None when it is not a read."""
    method, path, params = _params(head, body)
    action = (params.get("Action") or [""])[0]
    if action:
        return action if action.startswith(READS) else None
    if method in (b"GET", b"HEAD"):
        return f"{method.decode()} {path}"  # S3's REST reads (ListBuckets: GET /)
    return None


def changed(head: bytes, body: bytes) -> list[tuple[str, str]]:
    """What an IAM write names: ("user", name), ("role", name), ("key", id)."""
    _, _, params = _params(head, body)
    action = (params.get("Action") or [""])[0]
    if not action or action.startswith(READS):
        return []
    named = (("user", "UserName"), ("role", "RoleName"), ("key", "AccessKeyId"))
    return [(kind, params[field][0]) for kind, field in named if params.get(field)]


def principal_of(key: str) -> tuple[str, str] | None:
    """Whose key it is, by moto's own state (the daemon runs moto in-process)."""
    try:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        for user in list(iam_backends[ACCOUNT]["aws"].users.values()):
            if any(k.access_key_id == key for k in list(user.access_keys)):
                return ("user", str(user.name))
        session = sts_backends[ACCOUNT]["aws"].get_assumed_role_from_access_key(key)
        if session is not None:
            return ("role", str(session.role_arn).rsplit("/", 1)[-1])
    except Exception:  # noqa: S110  (moto changing under us: fall back to "now")
        pass
    return None


@dataclass
class Stale:
    """What the edge still believes about one access key."""

    answers: dict[str, bytes] = field(default_factory=dict)  # operation -> last success
    principal: tuple[str, str] | None = None
    worked_at: float = 0.0
    refused_at: float | None = None  # when the change that killed it happened
    flapped: bool = False


class IamLag:
    """The `aws` proxy's layer: off until `configure` sets a delay."""

    def __init__(self) -> None:
        self.lag = Lag()
        self.keys: dict[str, Stale] = {}
        self.changes: dict[tuple[str, str], list[float]] = {}
        self.lock = threading.Lock()
        self.replayed = 0

    def configure(self, lag: Lag) -> dict[str, Any]:
        """Set (0 s: clear) the delay; keys already lagging finish on the new one."""
        with self.lock:
            self.lag = lag
            if lag.seconds <= 0:
                self.keys.clear()
                self.changes.clear()
        return {**lag.as_dict(), "replayed": self.replayed}

    def exchange(
        self, head: bytes, body: bytes, status: int, response_head: bytes, response_body: bytes
    ) -> bytes | None:
        """Remember successes; during a key's lag, answer its refused reads with them."""
        if self.lag.seconds <= 0:
            return None
        key = _key_id(head)
        if key is None:
            return None
        op = operation(head, body)
        now = time.monotonic()
        with self.lock:
            stale = self.keys.setdefault(key, Stale())
            if 200 <= status < 300:
                for entity in changed(head, body):
                    self.changes.setdefault(entity, []).append(now)
                stale.refused_at, stale.flapped, stale.worked_at = None, False, now
                if op is not None:
                    stale.answers[op] = response_head + response_body
                    stale.principal = stale.principal or principal_of(key)
                return None
            if not any(word in response_body for word in REFUSALS):
                return None  # not an authentication or authorization refusal
            if not stale.answers:
                return None  # the key never worked: nothing stale to answer with
            if stale.refused_at is None:
                stale.refused_at = self._cause(key, stale, now)
                if self.lag.flap:
                    stale.flapped = True
                    return None  # one edge server knew already
            if now - stale.refused_at >= self.lag.seconds or op not in stale.answers:
                return None
            self.replayed += 1
            return stale.answers[op]

    def _cause(self, key: str, stale: Stale, now: float) -> float:
        """When the change that killed the key happened: the first write to the key or its
        principal since it last worked (now, when none went through the proxy)."""
        entities = [("key", key), *([stale.principal] if stale.principal else [])]
        since = [
            t for entity in entities for t in self.changes.get(entity, []) if t > stale.worked_at
        ]
        return min(since, default=now)
