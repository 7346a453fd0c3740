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

import threading
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
    """The shared probe clients of one AWS revoker (thread-safe: botocore clients are), made
    at the first probe; `loader`: the revoker's own botocore data loader, whose service
    models are loaded already."""

    def __init__(
        self, *, endpoint_url: str | None, region: str, config: Config, loader: Any = None
    ) -> None:
        self._args = (endpoint_url, region, config)
        self._loader = loader
        self._lock = threading.Lock()
        self._clients: tuple[Any, Any] | None = None

    def _made(self) -> tuple[Any, Any]:
        with self._lock:
            if self._clients is None:
                session = botocore.session.Session()
                if self._loader is not None:
                    session.register_component("data_loader", self._loader)
                # The only source of credentials these clients know: no environment, no
                # profile.
                session.register_component(
                    "credential_provider", CredentialResolver([_MaterialProvider()])
                )
                self._clients = (
                    _client(session, "iam", *self._args),
                    _client(session, "sts", *self._args),
                )
            return self._clients

    @property
    def iam(self) -> IAMClient:
        client: IAMClient = self._made()[0]
        return client

    @property
    def sts(self) -> STSClient:
        client: STSClient = self._made()[1]
        return client

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
        with self._lock:
            made, self._clients = self._clients, None
        for client in made or ():
            client.close()


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
