"""AWS's alert senders: AWS Health and GuardDuty events as EventBridge delivers them (the
shapes of AWS's published samples), the API destination's API-key header, and SNS.

`SnsSigner` holds an RSA key and its certificate and signs SNS messages (SignatureVersion 1
or 2) over SNS's canonical string; `SnsCertificateHost` serves that certificate (and a
`SubscribeURL` endpoint) over https with a trustme CA on `127.0.0.1:PORT`, which the
receiver accepts when `settings.alerts.sns.cert_hosts` names it and `cert_ca_file` trusts
the CA."""

from __future__ import annotations

import base64
import hashlib
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from killswitch.alerts.sources.aws.sns import SnsMessage, string_to_sign
from killswitch.sandbox.senders import now
from killswitch.sandbox.serving import ThreadedServer

ACCOUNT = "123456789012"
REGION = "us-east-1"


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
        "time": now(),
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
        "time": now(),
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
                "eventFirstSeen": now(),
                "eventLastSeen": now(),
            },
            "severity": severity,
            "createdAt": now(),
            "updatedAt": now(),
            "title": f"Credentials for {user_name} were used from an external IP address.",
            "description": "Credentials used from outside AWS.",
        },
    }


def aws_headers(api_key: str, header: str = "x-killswitch-key") -> dict[str, str]:
    """What an EventBridge API destination with API-key authorization sends."""
    return {header: api_key, "content-type": "application/json; charset=utf-8"}


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
            "Timestamp": now(),
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
            "Timestamp": now(),
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
