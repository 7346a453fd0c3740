"""The sandbox's SNS certificate host over real https (trustme CA): the receiver's own
fetcher gets the certificate from it and confirms a subscription on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources.sns import https_fetch
from killswitch.sandbox.senders import SnsCertificateHost, health_exposed_event, sns_headers
from tests.killswitch.alerts.conftest import TOPIC, Secrets, alert_settings, open_door


@pytest.fixture
def host(tmp_path: Path) -> Iterator[SnsCertificateHost]:
    served = SnsCertificateHost(tmp_path)
    served.start()
    yield served
    served.stop()


def test_signed_over_https_from_the_sandbox_host(tmp_path: Path, host: SnsCertificateHost) -> None:
    keys = Secrets()
    sns = {
        "enabled": True,
        "topic_arns": [TOPIC],
        "cert_hosts": [host.host_pattern],
        "cert_ca_file": str(host.ca_path),
    }
    settings: AlertSettings = alert_settings(keys, sns=sns)
    fetch = https_fetch(str(host.ca_path))
    for door in open_door(tmp_path, settings, fetch=fetch, signer=host.signer, keys=keys):
        confirmation = host.signer.subscription_confirmation(TOPIC)
        answer = door.post("sns", json.dumps(confirmation).encode(), sns_headers(confirmation))
        assert answer.status_code == 200, answer.text
        assert host.confirmed == [TOPIC]
        message = host.signer.notification(TOPIC, health_exposed_event("AKIAIOSFODNN7EXAMPLE"))
        answer = door.post("sns", json.dumps(message).encode(), sns_headers(message))
        assert answer.status_code == 202, answer.text
        assert door.handled[0].credentials[0].identifier == "AKIAIOSFODNN7EXAMPLE"


def test_a_host_not_trusted_is_not_fetched(tmp_path: Path, host: SnsCertificateHost) -> None:
    fetch = https_fetch(None)  # the system's CAs do not know the sandbox CA
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch(host.signer.cert_url)
