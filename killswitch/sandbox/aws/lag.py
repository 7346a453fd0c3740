"""IAM's propagation delay, in the `aws` fault proxy in front of moto (which applies every
change at once).

Real IAM is eventually consistent the way a cache at the edge is: the control plane shows a
change at once (`GetUser`, `ListAccessKeys` by an administrator read the new state), while
the servers that authenticate and authorize requests keep their old view of a key for a
while. So the delay belongs to the requests *signed with the affected key*, not to IAM's
reads: per access key id (the SigV4 `Credential=AKID/…` of the Authorization header) the
layer remembers the last successful answer to each read call. When moto first refuses a
key that worked before (its key deleted, set Inactive, or a deny attached — whichever
containment call did it), the layer starts that key's lag: for `seconds`, moto's refusals
of the key's reads are replaced by the remembered success, as a stale edge would answer.
With `flap`, that first refusal itself goes through, and the stale answers follow it: a
rejection, then acceptances, then the rejection for good.

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


def operation(head: bytes, body: bytes) -> str | None:
    """The call a request makes ("iam GetUser", "GET /"), None when it is not a read."""
    method, _, rest = head.partition(b" ")
    target = rest.split(b" ", 1)[0].decode("latin-1")
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    form = parse_qs(body.decode("latin-1")) if method == b"POST" else {}
    action = (form.get("Action") or query.get("Action") or [""])[0]
    if action:
        return action if action.startswith(READS) else None
    if method in (b"GET", b"HEAD"):
        return f"{method.decode()} {parts.path}"  # S3's REST reads (ListBuckets: GET /)
    return None


@dataclass
class Stale:
    """What the edge still believes about one access key."""

    answers: dict[str, bytes] = field(default_factory=dict)  # operation -> last success
    refused_at: float | None = None
    flapped: bool = False


class IamLag:
    """The `aws` proxy's layer: off until `configure` sets a delay."""

    def __init__(self) -> None:
        self.lag = Lag()
        self.keys: dict[str, Stale] = {}
        self.lock = threading.Lock()
        self.replayed = 0

    def configure(self, lag: Lag) -> dict[str, Any]:
        """Set (0 s: clear) the delay; keys already lagging finish on the new one."""
        with self.lock:
            self.lag = lag
            if lag.seconds <= 0:
                self.keys.clear()
        return {**lag.as_dict(), "replayed": self.replayed}

    def exchange(
        self, head: bytes, body: bytes, status: int, response_head: bytes, response_body: bytes
    ) -> bytes | None:
        """Remember successes; during a key's lag, answer its refused reads with them."""
        if self.lag.seconds <= 0:
            return None
        key = _key_id(head)
        op = operation(head, body)
        if key is None:
            return None
        now = time.monotonic()
        with self.lock:
            stale = self.keys.setdefault(key, Stale())
            if 200 <= status < 300:
                stale.refused_at, stale.flapped = None, False
                if op is not None:
                    stale.answers[op] = response_head + response_body
                return None
            if not any(word in response_body for word in REFUSALS):
                return None  # not an authentication or authorization refusal
            if not stale.answers:
                return None  # the key never worked: nothing stale to answer with
            if stale.refused_at is None:
                stale.refused_at = now
                if self.lag.flap:
                    stale.flapped = True
                    return None  # one edge server knew already
            if now - stale.refused_at >= self.lag.seconds or op not in stale.answers:
                return None
            self.replayed += 1
            return stale.answers[op]
