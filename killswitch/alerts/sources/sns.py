"""`POST /alerts/sns`: EventBridge events through an SNS HTTPS subscription, authenticated by
SNS's own message signature.

SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, over SNS's canonical string (each of
the type's fields that is present as `Name\\nvalue\\n`, in a fixed order). The certificate
is fetched only from `SigningCertURL` over https on an allowed SNS host (`cert_hosts`, by
default `sns.<region>.amazonaws.com` and `.amazonaws.com.cn`), and cached. Only messages of
the allowed topics are read; the `Timestamp` must be inside `max_age_s` and the `MessageId`
new. A `SubscriptionConfirmation` of an allowed topic is confirmed by a GET of its
`SubscribeURL` (an SNS host again); an `UnsubscribeConfirmation` is acknowledged and never
followed.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field

from killswitch.alerts.refusals import (
    AlertRefusedError,
    ForgedError,
    MalformedError,
    NotAllowedError,
    ReplayedError,
    StaleError,
    UnsignedError,
)
from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.settings import SnsAlertSettings
from killswitch.alerts.sources import Admitted, Answered, Incoming, claim, parse
from killswitch.alerts.sources.aws import EventBridgeEvent, alert_of

Fetch = Callable[[str], bytes]
CERT_LIMIT = 64 * 1024
# The fields SNS signs, per message type, in the order it signs them.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class CertificateUnavailableError(AlertRefusedError):
    """The SNS certificate host did not answer: SNS should retry (503)."""

    code = "alert-certificate-unavailable"
    status = 503
    remediation = "The signing certificate could not be fetched; SNS retries the delivery."


class SnsMessage(BaseModel):
    """An SNS HTTP(S) delivery (all three types share one shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    Type: Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
    MessageId: str = Field(min_length=1, max_length=100)
    TopicArn: str = Field(min_length=1, max_length=300)
    Message: str = Field(max_length=256 * 1024)
    Timestamp: str = Field(min_length=1, max_length=40)
    SignatureVersion: Literal["1", "2"]
    Signature: str = Field(min_length=1, max_length=4096)
    SigningCertURL: str = Field(min_length=1, max_length=2000)
    Subject: str | None = Field(None, max_length=100)
    Token: str | None = Field(None, max_length=2000)
    SubscribeURL: str | None = Field(None, max_length=2000)
    UnsubscribeURL: str | None = Field(None, max_length=2000)


def string_to_sign(message: SnsMessage) -> bytes:
    """SNS's canonical string: `Name\\nvalue\\n` for each signed field that is present."""
    parts = []
    for name in SIGNED_FIELDS[message.Type]:
        value = getattr(message, name)
        if value is not None:
            parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def allowed_host(url: str, hosts: tuple[str, ...]) -> bool:
    """An https URL, without credentials, on one of the allowed hosts (full match)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme != "https" or parts.username or parts.password or "@" in parts.netloc:
        return False
    return any(re.fullmatch(h, parts.netloc, re.IGNORECASE) for h in hosts)


def timestamp_of(text: str) -> datetime:
    """SNS's `Timestamp` (ISO 8601, UTC)."""
    try:
        stamped = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedError("Timestamp is not ISO 8601") from None
    return stamped if stamped.tzinfo else stamped.replace(tzinfo=UTC)


class SnsSource:
    """SNS HTTPS subscription → `POST /alerts/sns`."""

    name = "sns"

    def __init__(self, settings: SnsAlertSettings, replay: ReplayCache, fetch: Fetch) -> None:
        self.settings = settings
        self.replay = replay
        self.fetch = fetch
        self._certs: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def disabled(self) -> str | None:
        """Not enabled, or no topic allowed: the source is off."""
        if not self.settings.enabled:
            return "the sns source is not enabled (settings.alerts.sns.enabled)"
        if not self.settings.topic_arns:
            return "the sns source allows no topic (settings.alerts.sns.topic_arns)"
        return None

    def claimed(self, incoming: Incoming) -> str:
        """The topic and message id SNS's headers claim."""
        headers = incoming.headers
        return claim(
            f"{headers.get('x-amz-sns-topic-arn', '-')} {headers.get('x-amz-sns-message-id', '-')}"
        )

    def accept(self, incoming: Incoming) -> Admitted | Answered:
        """Topic, certificate host, signature, window and id; then the message."""
        message = parse(SnsMessage, incoming.body, "SNS message")
        if message.TopicArn not in self.settings.topic_arns:
            raise NotAllowedError(f"topic {claim(message.TopicArn)} is not allowed")
        if not allowed_host(message.SigningCertURL, self.settings.cert_hosts):
            raise NotAllowedError("SigningCertURL is not https on an allowed SNS host")
        self._verify(message)
        stamped = timestamp_of(message.Timestamp).timestamp()
        age = time.time() - stamped
        if age > self.settings.max_age_s or age < -self.settings.max_age_s:
            raise StaleError(f"Timestamp is {age:.0f}s off (max_age_s {self.settings.max_age_s})")
        key = f"sns:{message.TopicArn}:{message.MessageId}"
        # SNS resends a failed delivery with the same MessageId and Timestamp.
        if not self.replay.first_time(key, stamped + self.settings.max_age_s + 1):
            raise ReplayedError(f"SNS message {claim(message.MessageId)} was accepted before")
        if message.Type == "SubscriptionConfirmation":
            return self._confirm(message)
        if message.Type == "UnsubscribeConfirmation":
            return Answered({"ok": True, "unsubscribed": message.TopicArn})
        event = parse(EventBridgeEvent, message.Message, "SNS Message (an EventBridge event)")
        return Admitted((alert_of(event, self.name, incoming.received_at),), replay_key=key)

    def _verify(self, message: SnsMessage) -> None:
        try:
            signature = base64.b64decode(message.Signature, validate=True)
        except (binascii.Error, ValueError):
            raise UnsignedError("Signature is not base64") from None
        key = self._certificate(message.SigningCertURL)
        digest = hashes.SHA1() if message.SignatureVersion == "1" else hashes.SHA256()  # noqa: S303
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), digest)
        except InvalidSignature:
            raise ForgedError("the SNS signature does not match its certificate") from None

    def _certificate(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        try:
            pem = self.fetch(url)
        except AlertRefusedError:
            raise
        except Exception as exc:  # the host is down or slow: let SNS retry
            raise CertificateUnavailableError(
                f"the signing certificate could not be fetched ({type(exc).__name__})"
            ) from None
        try:
            cert = x509.load_pem_x509_certificate(pem[:CERT_LIMIT])
        except ValueError:
            raise ForgedError("SigningCertURL does not serve a PEM certificate") from None
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ForgedError("the signing certificate is not valid now")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ForgedError("the signing certificate's key is not RSA")
        with self._lock:
            if len(self._certs) > 100:
                self._certs.clear()
            self._certs[url] = key
        return key

    def _confirm(self, message: SnsMessage) -> Answered:
        url = message.SubscribeURL or ""
        if not self.settings.confirm_subscriptions:
            return Answered({"ok": True, "confirmed": False, "reason": "confirmation is off"})
        if not allowed_host(url, self.settings.cert_hosts):
            raise NotAllowedError("SubscribeURL is not https on an allowed SNS host")
        query = parse_qs(urlsplit(url).query)
        if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [
            message.TopicArn
        ]:
            raise NotAllowedError("SubscribeURL does not confirm this message's topic")
        try:
            self.fetch(url)
        except AlertRefusedError:
            raise
        except Exception as exc:
            raise CertificateUnavailableError(
                f"SubscribeURL could not be fetched ({type(exc).__name__})"
            ) from None
        return Answered({"ok": True, "confirmed": message.TopicArn})


def https_fetch(ca_file: str | None = None, timeout_s: float = 5.0) -> Fetch:
    """GET over https (no redirects, at most CERT_LIMIT bytes): the certificate and
    SubscribeURL fetcher. A 4xx is the sender's fault (refused); the rest may be retried."""
    import httpx

    verify: str | bool = ca_file if ca_file else True

    def fetch(url: str) -> bytes:
        with httpx.Client(verify=verify, timeout=timeout_s, follow_redirects=False) as client:
            with client.stream("GET", url) as answer:
                if 300 <= answer.status_code < 500:
                    raise ForgedError(f"{urlsplit(url).netloc} answered {answer.status_code}")
                answer.raise_for_status()
                body = b""
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > CERT_LIMIT:
                        raise ForgedError("the answer is larger than a certificate")
                return body

    return fetch
