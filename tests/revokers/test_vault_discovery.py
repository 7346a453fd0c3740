"""Vault discovery's accessor index against a real OpenBao dev server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from killswitch.sandbox.vault import fleet as vault_fleet
from revokers.vault.discovery import AccessorIndex
from tests.revokers.test_vault_client import clients_of

pytestmark = pytest.mark.integration


def test_scans_at_once_look_each_accessor_up_once(vault: vault_fleet.Vault) -> None:
    """A fleet's agents are discovered side by side: each scan lists the accessors itself,
    but an accessor another scan is looking up is waited for, not looked up again."""
    root = vault.root()
    minted_now = {
        root.auth.token.create(policies=["default"], ttl="5m")["auth"]["accessor"]
        for _ in range(12)
    }
    index = AccessorIndex(clients_of(vault), workers=8)
    looked: list[str] = []
    lookup = index._lookup

    def counted(accessor: str) -> dict[str, object] | None:
        looked.append(accessor)
        return lookup(accessor)

    index._lookup = counted  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=8) as pool:
        scans = list(pool.map(lambda _: index.scan(), range(8)))
    assert all(minted_now <= set(scan) for scan in scans)
    assert len(looked) == len(set(looked))  # none twice
    assert minted_now <= set(looked)
