"""One IAM and one STS client for every probe, each call signed with the material of the
probe that makes it (`signing_with`).

A botocore client per key cost 25–45 ms of CPU (its class, its event hooks, its endpoint
resolver), paid for every credential of every run, in the seconds that decide how soon the
run proves anything; and the clients piled up in the warm service. The clients here are
made once. Their credentials are the probing thread's material, set around the call: none
set fails the call (NoCredentialsError, an inconclusive probe), so a probe can never be
signed by another identity — the kill switch's own above all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    Credentials,
    ReadOnlyCredentials,
)
from botocore.exceptions import NoCredentialsError

from killswitch.secrets import Material

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

METHOD = "killswitch-probe-material"
_signing: ContextVar[ReadOnlyCredentials | None] = ContextVar("aws_probe_material", default=None)


class MaterialCredentials(Credentials):
    """The credentials botocore signs a probe's call with: the material set for this thread."""

    def __init__(self) -> None:
        super().__init__("", "", method=METHOD)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        current = _signing.get()
        if current is None:
            raise NoCredentialsError()
        return current


class _MaterialProvider(CredentialProvider):
    METHOD = METHOD

    def load(self) -> Credentials:
        return MaterialCredentials()


class ProbeClients:
    """The shared probe clients of one AWS revoker (thread-safe: botocore clients are)."""

    def __init__(self, *, endpoint_url: str | None, region: str, config: Config) -> None:
        session = botocore.session.Session()
        # The only source of credentials these clients know: no environment, no profile.
        session.register_component("credential_provider", CredentialResolver([_MaterialProvider()]))
        self.iam: IAMClient = _client(session, "iam", endpoint_url, region, config)
        self.sts: STSClient = _client(session, "sts", endpoint_url, region, config)

    @staticmethod
    @contextmanager
    def signing_with(material: Material) -> Iterator[None]:
        """Calls of this thread inside the block are signed with `material`'s key."""
        token = _signing.set(
            ReadOnlyCredentials(
                str(material.get("access_key_id") or ""),
                str(material.get("secret_access_key") or ""),
                material.get("session_token") or None,
            )
        )
        try:
            yield
        finally:
            _signing.reset(token)

    def close(self) -> None:
        self.iam.close()
        self.sts.close()


def _client(
    session: botocore.session.Session,
    service: str,
    endpoint_url: str | None,
    region: str,
    config: Config,
) -> Any:
    return session.create_client(
        service, region_name=region, endpoint_url=endpoint_url, config=config
    )
