"""Senders for the alert receiver: each signs like the real one does, with payloads of the
providers' published shapes (AWS Health and GuardDuty EventBridge events, Alertmanager's
version 4 webhook, GitHub's `secret_scanning_alert`, the generic Standard Webhooks body).

`SnsSigner` holds an RSA key and its certificate and signs SNS messages (SignatureVersion 1
or 2) over SNS's canonical string; `SnsCertificateHost` serves that certificate (and a
`SubscribeURL` endpoint) over https with a trustme CA on `127.0.0.1:PORT`, which the
receiver accepts when `settings.alerts.sns.cert_hosts` names it and `cert_ca_file` trusts
the CA. Used by the tests and by `killswitch demo --via-alert`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from killswitch.alerts.sources.sns import SnsMessage, string_to_sign
from killswitch.sandbox.serving import ThreadedServer

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def health_exposed_event(
    key_id: str, *, account: str = ACCOUNT, event_id: str | None = None
) -> dict[str, Any]:
    """AWS Health's `AWS_RISK_CREDENTIALS_EXPOSED` as EventBridge delivers it (the shape of
    AWS's published sample: the key id in `detail.affectedEntities[].entityValue`)."""
    suffix = uuid.uuid4().hex[:17].upper()
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": account,
        "time": _now(),
        "region": REGION,
        "resources": [],
        "detail": {
            "eventArn": f"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/{suffix}",
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "startTime": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "eventDescription": [
                {
                    "language": "en_US",
                    "latestDescription": "Your AWS access key was found publicly available.",
                }
            ],
            "affectedEntities": [{"entityValue": key_id}],
        },
    }


def guardduty_event(
    key_id: str,
    *,
    finding_type: str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    severity: float = 8.0,
    user_name: str = "agent-user",
    user_type: str = "IAMUser",
    account: str = ACCOUNT,
    finding_id: str | None = None,
) -> dict[str, Any]:
    """A GuardDuty finding as EventBridge delivers it (`detail-type: GuardDuty Finding`;
    the key in `detail.resource.accessKeyDetails`)."""
    finding = finding_id or uuid.uuid4().hex
    detector = "12abc34d567e8fa901bc2d34e56789f0"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": account,
        "time": _now(),
        "region": REGION,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": account,
            "region": REGION,
            "partition": "aws",
            "id": finding,
            "arn": f"arn:aws:guardduty:{REGION}:{account}:detector/{detector}/finding/{finding}",
            "type": finding_type,
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {
                    "accessKeyId": key_id,
                    "principalId": "AIDA" + hashlib.sha1(key_id.encode()).hexdigest()[:16].upper(),  # noqa: S324
                    "userName": user_name,
                    "userType": user_type,
                },
            },
            "service": {
                "serviceName": "guardduty",
                "detectorId": detector,
                "action": {
                    "actionType": "AWS_API_CALL",
                    "awsApiCallAction": {
                        "api": "ListBuckets",
                        "serviceName": "s3.amazonaws.com",
                        "callerType": "Remote IP",
                    },
                },
                "archived": False,
                "count": 1,
                "eventFirstSeen": _now(),
                "eventLastSeen": _now(),
            },
            "severity": severity,
            "createdAt": _now(),
            "updatedAt": _now(),
            "title": f"Credentials for {user_name} were used from an external IP address.",
            "description": "Credentials used from outside AWS.",
        },
    }


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


def secret_scanning_alert(
    *,
    secret_type: str = "github_personal_access_token",  # noqa: S107
    number: int = 42,
    repository: str = "octo-org/agents",
    action: str = "created",
    validity: str = "active",
    secret: str | None = None,
) -> dict[str, Any]:
    """GitHub's `secret_scanning_alert` organisation webhook (the fields of GitHub's
    `secret-scanning-alert-webhook` schema: no secret value, unless `secret` is given to
    imitate a relayed REST alert)."""
    owner, _, name = repository.partition("/")
    api = f"https://api.github.com/repos/{repository}"
    alert: dict[str, Any] = {
        "number": number,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": None,
        "url": f"{api}/secret-scanning/alerts/{number}",
        "html_url": f"https://github.com/{repository}/security/secret-scanning/{number}",
        "locations_url": f"{api}/secret-scanning/alerts/{number}/locations",
        "resolution": None,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_comment": None,
        "secret_type": secret_type,
        "secret_type_display_name": secret_type.replace("_", " ").title(),
        "validity": validity,
        "push_protection_bypassed": False,
        "push_protection_bypassed_by": None,
        "push_protection_bypassed_at": None,
        "publicly_leaked": False,
        "multi_repo": False,
    }
    if secret is not None:
        alert["secret"] = secret
    org = {"login": owner, "id": 30846345, "url": f"https://api.github.com/orgs/{owner}"}
    return {
        "action": action,
        "alert": alert,
        "repository": {
            "id": 257423561,
            "name": name,
            "full_name": repository,
            "private": True,
            "owner": {**org, "type": "Organization"},
            "html_url": f"https://github.com/{repository}",
            "url": api,
        },
        "organization": org,
        "sender": {"login": "github", "id": 9919, "type": "Bot"},
    }


def generic_alert(
    *,
    agent_id: str | None = None,
    credentials: list[dict[str, str]] | None = None,
    event: str = "credential.leaked",
    severity: float | None = 9.0,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """The generic source's documented body."""
    body: dict[str, Any] = {"id": alert_id or f"det-{uuid.uuid4().hex[:12]}", "event": event}
    if severity is not None:
        body["severity"] = severity
    if agent_id is not None:
        body["agent_id"] = agent_id
    if credentials:
        body["credentials"] = credentials
    return body


def encode(payload: dict[str, Any]) -> bytes:
    """The body as a sender writes it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def aws_headers(api_key: str, header: str = "x-killswitch-key") -> dict[str, str]:
    """What an EventBridge API destination with API-key authorization sends."""
    return {header: api_key, "content-type": "application/json; charset=utf-8"}


def alertmanager_headers(token: str) -> dict[str, str]:
    """Alertmanager's `http_config.authorization` (type Bearer)."""
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def github_headers(
    secret: str, body: bytes, *, event: str = "secret_scanning_alert", delivery: str | None = None
) -> dict[str, str]:
    """GitHub's webhook headers: the HMAC-SHA256 of the body, the event, the delivery id."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-hub-signature-256": f"sha256={digest}",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-github-hook-id": "1",
        "user-agent": "GitHub-Hookshot/sandbox",
        "content-type": "application/json",
    }


def generic_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, signed by the `standardwebhooks` library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def new_generic_secret() -> str:
    """A fresh `whsec_…` secret."""
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


class SnsSigner:
    """Signs SNS messages the way SNS does, with a certificate served at `cert_url`."""

    def __init__(self, cert_url: str = "https://sns.us-east-1.amazonaws.com/sandbox.pem") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.cert_url = cert_url

    def fetch(self, url: str) -> bytes:
        """The certificate host, in memory (for tests that do not start one)."""
        if url != self.cert_url:
            raise LookupError(f"no certificate at {url}")
        return self.cert_pem

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """`message` with SignatureVersion, SigningCertURL and Signature set."""
        message = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        message["Signature"] = "A" * 4  # the model requires one; replaced below
        canonical = string_to_sign(SnsMessage.model_validate(message))
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(canonical, padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    def notification(
        self,
        topic_arn: str,
        event: dict[str, Any],
        *,
        version: str = "2",
        subject: str | None = None,
    ) -> dict[str, Any]:
        """An SNS Notification whose Message is the EventBridge event (as an EventBridge
        rule with an SNS target delivers it)."""
        message: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": json.dumps(event),
            "Timestamp": _now(),
            "UnsubscribeURL": f"{self.base}/?Action=Unsubscribe&SubscriptionArn={topic_arn}:x",
        }
        if subject is not None:
            message["Subject"] = subject
        return self.sign(message, version)

    def subscription_confirmation(
        self, topic_arn: str, *, version: str = "2", subscribe_url: str | None = None
    ) -> dict[str, Any]:
        """An SNS SubscriptionConfirmation (its SubscribeURL on the certificate host)."""
        token = uuid.uuid4().hex * 2
        url = subscribe_url or (
            f"{self.base}/?Action=ConfirmSubscription&TopicArn={quote(topic_arn)}&Token={token}"
        )
        message = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": url,
            "Timestamp": _now(),
        }
        return self.sign(message, version)

    @property
    def base(self) -> str:
        return self.cert_url.rsplit("/", 1)[0]


def sns_headers(message: dict[str, Any]) -> dict[str, str]:
    """The headers SNS sends with an HTTP(S) delivery."""
    return {
        "x-amz-sns-message-type": str(message["Type"]),
        "x-amz-sns-message-id": str(message["MessageId"]),
        "x-amz-sns-topic-arn": str(message["TopicArn"]),
        "content-type": "text/plain; charset=UTF-8",
        "user-agent": "Amazon Simple Notification Service Agent",
    }


class SnsCertificateHost:
    """The signer's certificate and a SubscribeURL endpoint over https (trustme CA) on
    `127.0.0.1:PORT`: settings `cert_hosts=(host_pattern,)`, `cert_ca_file=ca_path`."""

    def __init__(self, directory: Path) -> None:
        import trustme

        authority = trustme.CA()
        issued = authority.issue_cert("127.0.0.1", "localhost")
        self.ca_path = directory / "sns-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_path))
        chain, key = directory / "sns-cert.pem", directory / "sns-key.pem"
        issued.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        issued.cert_chain_pems[0].write_to_path(str(chain))
        for extra in issued.cert_chain_pems[1:]:
            extra.write_to_path(str(chain), append=True)
        self.http = ThreadedServer("sns-certificate-host", tls=(chain, key))
        self.host = f"127.0.0.1:{self.http.port}"
        self.signer = SnsSigner(f"https://{self.host}/SimpleNotificationService-sandbox.pem")
        self.confirmed: list[str] = []
        self._lock = threading.Lock()

    @property
    def host_pattern(self) -> str:
        """The `cert_hosts` entry that allows this host (and nothing else)."""
        return re.escape(self.host)

    def start(self) -> None:
        """Serve the certificate and the confirmation endpoint."""

        async def certificate(request: Request) -> Response:
            return PlainTextResponse(self.signer.cert_pem.decode())

        async def confirm(request: Request) -> Response:
            if request.query_params.get("Action") != "ConfirmSubscription":
                return PlainTextResponse("unknown action", status_code=400)
            with self._lock:
                self.confirmed.append(request.query_params.get("TopicArn", ""))
            return PlainTextResponse("<ConfirmSubscriptionResponse/>")

        self.http.start(
            Starlette(
                routes=[
                    Route("/SimpleNotificationService-sandbox.pem", certificate, methods=["GET"]),
                    Route("/", confirm, methods=["GET"]),
                ]
            )
        )

    def stop(self) -> None:
        self.http.stop()
