"""hvac clients with the kill switch's own identity: one per thread (requests sessions are not
shared across threads), logged in once, re-used for the life of the revoker.

Every client a thread makes — its own, and the throw-away ones of probes with an agent's
token or login — sends through that thread's one `requests.Session`, so a probe re-uses a
kept-alive connection instead of opening (and TLS-handshaking) one of its own. A token
travels in each request's `X-Vault-Token` header, never in the session; the session keeps
no cookies."""

from __future__ import annotations

import threading
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import hvac
import requests
from hvac.adapters import JSONAdapter
from requests import exceptions as rq
from tenacity import retry_if_exception
from urllib3.exceptions import NewConnectionError

from killswitch.errors import ConfigurationError
from killswitch.retry import retrying_call
from revokers.vault.errors import TRANSIENT, translate
from revokers.vault.settings import VaultSettings

# Discovery is a chain of dependent reads (entity, aliases, groups, accessors, leases, …):
# retrying the whole chain on one transient answer rarely gets through under a fault rate
# of a few tens of percent (0.8 ** 25 is 0.4%), so each read is retried by itself, as the
# cloud SDKs do. hvac has no retries of its own.
READ_RETRY_S = 10.0


def retried(exc: BaseException) -> bool:
    """A transient answer worth a retry of this one read — not a refused connection: a
    Vault that is down is found by the caller's own retry within its deadline, fast."""
    if isinstance(exc, rq.ConnectionError) and _refused(exc):
        return False
    return isinstance(exc, (*TRANSIENT, rq.JSONDecodeError))


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = args[0] if args else current.__cause__ or current.__context__
    return False


class RetryingAdapter(JSONAdapter):
    """hvac's JSON adapter, each request retried on a transient answer (429, 5xx, a reset,
    a timeout, an unparseable body) with jittered backoff for up to READ_RETRY_S, or less
    when the discovery it serves is due sooner (killswitch.retry.due_within)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        retrying = retrying_call(READ_RETRY_S, when=retry_if_exception(retried))
        return retrying(super().request, *args, **kwargs)


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

    def reading(self) -> hvac.Client:
        """This thread's client with the kill switch's token, each request retried on a
        transient answer (discovery's reads)."""
        client: hvac.Client | None = getattr(self._local, "reader", None)
        if client is None:
            client = self._make(self._own_token(), adapter=RetryingAdapter)
            self._local.reader = client
        return client

    def anonymous(self) -> hvac.Client:
        return self._make(None)

    def with_token(self, token: str) -> hvac.Client:
        return self._make(token)

    def _session(self) -> requests.Session:
        """This thread's one session (its connection pool), for every client it makes."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # hvac takes TLS verification from a session it is given, not from `verify=`.
            session.verify = self.config.verify
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self._local.session = session
        return session

    def _make(self, token: str | None, adapter: type[JSONAdapter] = JSONAdapter) -> hvac.Client:
        return hvac.Client(
            url=self.config.addr,
            token=token,
            namespace=self.config.namespace,
            verify=self.config.verify,
            timeout=int(self.config.timeout_s),
            adapter=adapter,
            session=self._session(),
        )
