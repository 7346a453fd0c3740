"""The Vault clients against a real OpenBao dev server: probes re-use one session (and its
kept-alive connection) per thread, never each other's token, and keep the TLS settings."""

from __future__ import annotations

import threading

import pytest
from hvac import exceptions as hv
from pydantic import SecretStr

from killswitch.sandbox.vault import fleet as vault_fleet
from revokers.vault.client import Clients
from revokers.vault.settings import VaultSettings

pytestmark = pytest.mark.integration


def clients_of(vault: vault_fleet.Vault, **extra: object) -> Clients:
    return Clients(
        VaultSettings(addr=vault.addr, token=SecretStr(vault.root_token), timeout_s=10, **extra)
    )


def minted(vault: vault_fleet.Vault, n: int) -> list[str]:
    root = vault.root()
    return [
        root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
        for _ in range(n)
    ]


def test_ten_probes_with_ten_tokens_open_one_connection(vault: vault_fleet.Vault) -> None:
    clients = clients_of(vault)
    tokens = minted(vault, 10)
    seen = set()
    for token in tokens:
        client = clients.with_token(token)
        seen.add(client.auth.token.lookup_self()["data"]["id"])
    assert seen == set(tokens)  # each probe spoke with its own token
    session = clients.anonymous().adapter.session
    assert session is clients.own().adapter.session
    pools = session.get_adapter(vault.addr).poolmanager.pools
    (key,) = pools.keys()
    assert pools[key].num_connections == 1


def test_a_token_never_stays_with_the_session(vault: vault_fleet.Vault) -> None:
    clients = clients_of(vault)
    (token,) = minted(vault, 1)
    clients.with_token(token).auth.token.lookup_self()
    anonymous = clients.anonymous()
    assert "X-Vault-Token" not in anonymous.adapter.session.headers
    assert not anonymous.adapter.session.cookies
    with pytest.raises((hv.Forbidden, hv.InvalidRequest)):
        anonymous.auth.token.lookup_self()


def test_each_thread_has_a_session_of_its_own(vault: vault_fleet.Vault) -> None:
    clients = clients_of(vault)
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(clients.anonymous().adapter.session))
    thread.start()
    thread.join()
    assert sessions[0] is not clients.anonymous().adapter.session


@pytest.mark.parametrize("verify", [False, "/etc/killswitch/vault-ca.pem"])
def test_tls_verification_reaches_every_request(vault: vault_fleet.Vault, verify: object) -> None:
    """hvac takes `verify` from a session it is given: the session must carry it."""
    clients = clients_of(vault, verify=verify)
    for client in (clients.anonymous(), clients.with_token("x"), clients.own()):
        assert client.adapter.session.verify == verify
        assert client.adapter._kwargs["verify"] == verify  # what requests is called with
