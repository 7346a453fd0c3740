"""The GCP probe's key file parsing: an unusable key file is inconclusive, never a verdict."""

from __future__ import annotations

import json

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from killswitch.secrets import Material, Secret
from revokers.base import ProbeOutcome
from revokers.gcp import probes


def key_file(private_key: object, **extra: str) -> str:
    pem = private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "agent@project.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
            **extra,
        }
    )


def test_a_parsed_key_file_signs_as_google_auth_would() -> None:
    raw = key_file(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    credentials = probes._parsed(raw)
    assert credentials.service_account_email == "agent@project.iam.gserviceaccount.com"
    assert credentials.signer.key_id == "k1"
    assert credentials.signer.sign(b"x")  # an RSA signature with the loaded key
    assert tuple(credentials.scopes or ()) == probes.SCOPES


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
        key_file(ec.generate_private_key(ec.SECP256R1())),
        json.dumps({"client_email": "a@b", "token_uri": "http://127.0.0.1:9/token"}),
    ],
    ids=["not-json", "not-an-object", "bad-pem", "ec-key", "no-private-key"],
)
def test_an_unusable_key_file_is_inconclusive(raw: str) -> None:
    with requests.Session() as session:
        attempt = probes.probe(Material("test", {"key_file": Secret(raw)}), session, 1.0)
    assert attempt.outcome is ProbeOutcome.INCONCLUSIVE
    assert attempt.evidence.startswith("unusable key file")
