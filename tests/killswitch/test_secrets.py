"""Probe material never prints itself, and the keyring file is private and atomic."""

from __future__ import annotations

import stat
from pathlib import Path

from killswitch.models import Credential
from killswitch.secrets import ChainedSource, KeyringFile, MappingSource, Secret

CRED = Credential("aws", "aws.access-key", "AKIAEXAMPLE", "arn:aws:iam::1:user/u", "a")


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret("canary-value-123")
    assert "canary" not in repr(secret) and "canary" not in str(secret)
    assert "canary" not in f"{secret} {[secret]} {dict(s=secret)}"
    assert secret.reveal() == "canary-value-123"


def test_keyring_file_is_private_and_round_trips(tmp_path: Path) -> None:
    keyring = KeyringFile(tmp_path / "keyring.json")
    keyring.add(
        "aws.access-key",
        "AKIAEXAMPLE",
        {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "canary"},
    )
    assert stat.S_IMODE((tmp_path / "keyring.json").stat().st_mode) == 0o600
    [material] = keyring.materials(CRED)
    assert material.get("secret_access_key") == "canary" and material.source == "keyring"
    assert "canary" not in repr(material)
    assert list(keyring.secret_values()) == ["canary"]


def test_the_first_source_with_material_wins(tmp_path: Path) -> None:
    keyring = KeyringFile(tmp_path / "k.json")
    keyring.add("aws.access-key", "AKIAEXAMPLE", {"secret_access_key": "from-keyring"})
    alert = MappingSource(
        "alert", {"aws.access-key:AKIAEXAMPLE": [{"secret_access_key": "leaked"}]}
    )
    chain = ChainedSource([alert, keyring])
    assert [m.get("secret_access_key") for m in chain.materials(CRED)] == ["leaked"]
    assert (
        ChainedSource([MappingSource("empty", {}), keyring]).materials(CRED)[0].source == "keyring"
    )
