from __future__ import annotations

import time

from killswitch.alerts.replay import MemoryReplayCache, SeenAlerts
from tests.conftest import InventoryAt


def test_seen_alerts_are_shared_through_the_inventory_and_expire(
    inventory_at: InventoryAt,
) -> None:
    one, other = SeenAlerts(inventory_at("a")), SeenAlerts(inventory_at("b"))
    assert one.first_time("github:d1", time.time() + 60)
    assert not other.first_time("github:d1", time.time() + 60)  # another replica, a restart
    assert one.first_time("github:old", time.time() - 1)
    assert other.first_time("github:old", time.time() + 60)  # expired: swept, then recorded
    other.forget("github:d1")
    assert one.first_time("github:d1", time.time() + 60)


def test_memory_cache_behaves_the_same() -> None:
    cache = MemoryReplayCache()
    assert cache.first_time("k", time.time() + 60)
    assert not cache.first_time("k", time.time() + 60)
    cache.forget("k")
    assert cache.first_time("k", time.time() + 60)
    assert cache.first_time("gone", time.time() - 1)
    assert cache.first_time("gone", time.time() + 60)
