"""Discovery streams: 10,000 NHIs pass through with flat memory, and what is gone at the
provider is dropped (mark-and-sweep) — but only after a complete enumeration."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from killswitch.errors import TransientError
from killswitch.inventory import Inventory
from killswitch.models import Nhi
from killswitch.settings import Settings
from killswitch.sightings import Sightings
from revokers.openai.revoker import OpenAIRevoker
from tests.conftest import InventoryAt

pytestmark = pytest.mark.integration
BULK = 10_000


def test_ten_thousand_nhis_are_discovered_with_flat_memory(
    settings: Settings, saas_url: str, tmp_path: Path
) -> None:
    owner = f"bulk-{uuid.uuid4().hex[:8]}"
    minted = httpx.post(
        f"{saas_url}/_sandbox/bulk",
        json={"provider": "openai", "owner": owner, "count": BULK, "project": "proj_bulk"},
        timeout=120,
    )
    assert minted.json() == {"minted": BULK}
    revoker = OpenAIRevoker(settings.openai)
    sightings = Sightings(Inventory(tmp_path / "inventory.db"))
    try:
        # Lazy: the first NHI arrives after one page of 100, not after 100 pages.
        pages = revoker.pages
        fetched: list[int] = []

        def counting(path: str, **kw: object) -> Iterator[dict[str, object]]:
            fetched.append(1)
            yield from pages(path, **kw)  # type: ignore[arg-type]

        revoker.pages = counting  # type: ignore[method-assign]
        stream = revoker.enumerate()
        next(stream)
        assert len(fetched) == 2  # the project list and the first project's first page
        stream.close()
        revoker.pages = pages  # type: ignore[method-assign]

        tracemalloc.start()
        recorded = sightings.record("openai", revoker.enumerate(), "run-1")
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert recorded.seen >= BULK and recorded.new == recorded.seen

        # What holding them all at once would cost, for scale.
        tracemalloc.start()
        everything = list(sightings.nhis("openai"))
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(everything) == recorded.seen
        del everything
        assert streamed_peak < held / 3, (streamed_peak, held)
        assert streamed_peak < 4 * 1024 * 1024
    finally:
        httpx.request("DELETE", f"{saas_url}/_sandbox/bulk", json={"owner": owner}, timeout=60)
    again = sightings.record("openai", revoker.enumerate(), "run-2")
    assert again.gone == BULK and again.new == 0
    revoker.close()


def test_a_failed_enumeration_drops_nothing(inventory_at: InventoryAt) -> None:
    sightings = Sightings(inventory_at("a"))
    first = [Nhi("aws", "aws.access-key", f"AKIA{i:016d}", "user/x") for i in range(3)]
    assert sightings.record("aws", iter(first), "run-1").new == 3

    def broken() -> Iterator[Nhi]:
        yield first[0]
        raise TransientError("throttled", provider="aws")

    with pytest.raises(TransientError):
        sightings.record("aws", broken(), "run-2")
    assert sightings.count() == {"aws": 3}
    assert sightings.record("aws", iter(first[:1]), "run-3").gone == 2
    assert [n.ref for n in sightings.nhis()] == [first[0].ref]
