"""Secret shapes: detect-secrets' plugin patterns plus our providers' own, on any string."""

from __future__ import annotations

import pytest

from killswitch.secret_shapes import looks_secret

SECRETS = [
    " sk-proj-abcdefghijklmnop1234",  # a leading space
    "XOXB-1234567890-abcdefghijkl",  # another case
    "token: ghp_abcdefghijklmnopqrstuvwxyz0123456789",  # a prefix
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleexampleexample",  # STS
    "abc8Q~Zx9.Yk_Lm-Np4Qr7St2Uv5Wx8Yz1Ab3Cd6",  # an Entra client secret
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # an AWS secret access key
    "hvs.CAESIJexampleexampleexample",
    "-----BEGIN RSA PRIVATE KEY-----",
    # Shapes only detect-secrets' plugins know (Stripe, SendGrid, a JWT):
    "rk_live_abcdefghijklmnopqrstuvwx",
    "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789abcdefg",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
]
REFERENCES = [
    "AKIAEXAMPLEKEY000001",  # an access key id names a key
    "ASIAEXAMPLE000000001",
    "proj_x/key_abc",
    "U0OWNER01",
    "weekly reports",
    "arn:aws:iam::123456789012:role/report-writer",
    "projects/acme/serviceAccounts/bot@acme.iam.gserviceaccount.com/keys/3f2a9b8c7d6e5f4a3b2c",
    "3f2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",  # a GCP key id
    "0e9LX4XAQQ6z1FAZsYDhMCwE",  # a Vault accessor
    "00000000-0000-0000-0000-000000000001",
    "APDevelopers",
    "aws.access-key",
    "",
]


@pytest.mark.parametrize("value", SECRETS)
def test_secret_material_is_found(value: str) -> None:
    assert looks_secret(value)


@pytest.mark.parametrize("value", REFERENCES)
def test_references_are_not_secrets(value: str) -> None:
    assert not looks_secret(value)
