"""hvac clients with the kill switch's own identity: one per thread (requests sessions are not
shared across threads), logged in once, re-used for the life of the revoker."""

from __future__ import annotations

import threading

import hvac

from killswitch.errors import ConfigurationError
from revokers.vault.errors import translate
from revokers.vault.settings import VaultSettings


class Clients:
    """The kill switch's own Vault clients, and throw-away clients for probes."""

    def __init__(self, config: VaultSettings) -> None:
        if not config.addr:
            raise ConfigurationError("vault.addr is not set")
        self.config = config
        self._local = threading.local()
        self._token: str | None = None
        self._lock = threading.Lock()

    def _own_token(self) -> str:
        with self._lock:
            if self._token is None:
                self._token = self._login()
            return self._token

    def _login(self) -> str:
        config = self.config
        if config.auth_method == "token":
            if config.token is None:
                raise ConfigurationError("vault.token is not set (auth_method token)")
            return config.token.get_secret_value()
        if not config.role_id or config.secret_id is None:
            raise ConfigurationError("vault.role_id and vault.secret_id are needed for approle")
        client = self.anonymous()
        try:
            client.auth.approle.login(
                role_id=config.role_id,
                secret_id=config.secret_id.get_secret_value(),
                mount_point=config.approle_auth_mount,
            )
        except Exception as exc:
            raise translate(exc, doing="approle login of the kill switch itself") from exc
        return str(client.token)

    def own(self) -> hvac.Client:
        """This thread's client with the kill switch's token."""
        client: hvac.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._make(self._own_token())
            self._local.client = client
        return client

    def anonymous(self) -> hvac.Client:
        return self._make(None)

    def with_token(self, token: str) -> hvac.Client:
        return self._make(token)

    def _make(self, token: str | None) -> hvac.Client:
        return hvac.Client(
            url=self.config.addr,
            token=token,
            namespace=self.config.namespace,
            verify=self.config.verify,
            timeout=int(self.config.timeout_s),
        )
