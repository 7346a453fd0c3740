"""Provider slots against the sandbox's real Prefect server: however many processes lease
from one limit, never more calls in flight than it allows; a busy process lends its idle
slots to its own next calls without asking the server, and gives them back once idle."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from killswitch.scale.slots import LINGER_S, MissingLimitError, SlotPool
from tests.conftest import prefect_headers

pytestmark = pytest.mark.integration
LIMIT = 2


@pytest.fixture
def limit(sandbox: dict[str, Any]) -> Iterator[tuple[str, httpx.Client]]:
    """A fresh global concurrency limit of LIMIT slots on the sandbox's server, which the
    pools made inside the test reach (Prefect's settings of this process are read once: the
    environment alone would not move an earlier test's)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates = {
        PREFECT_API_URL: str(sandbox["prefect"]["api_url"]),
        PREFECT_API_AUTH_STRING: str(sandbox["prefect"]["auth_string"]),
    }
    api = httpx.Client(
        base_url=str(sandbox["prefect"]["api_url"]) + "/", headers=prefect_headers(sandbox)
    )
    name = f"killswitch-test-{uuid.uuid4().hex[:8]}"
    assert api.post("v2/concurrency_limits/", json={"name": name, "limit": LIMIT}).is_success
    with temporary_settings(updates=updates):
        yield name, api
    api.delete(f"v2/concurrency_limits/{name}")
    api.close()


def active(api: httpx.Client, name: str) -> int:
    return int(api.get(f"v2/concurrency_limits/{name}").json()["active_slots"])


def test_two_processes_never_hold_more_than_the_limit_and_give_back_when_idle(
    limit: tuple[str, httpx.Client],
) -> None:
    name, api = limit
    pools = [SlotPool(name), SlotPool(name)]  # two processes' pools (or two hosts')
    in_flight, most, lock = 0, 0, threading.Lock()

    def calls(pool: SlotPool) -> None:
        nonlocal in_flight, most
        for _ in range(15):
            lease = pool.take(timeout_s=30)
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(0.01)  # the provider call
            with lock:
                in_flight -= 1
            pool.give(lease)

    with ThreadPoolExecutor(max_workers=8) as threads:
        list(threads.map(calls, [pools[n % 2] for n in range(8)]))
    assert most == LIMIT  # used to the full, never beyond
    takes = 8 * 15
    assert sum(p.leased for p in pools) < takes / 4, [p.leased for p in pools]  # mostly lent
    deadline = time.monotonic() + 10 * LINGER_S + 5
    while active(api, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert active(api, name) == 0  # idle slots went back to the server
    for pool in pools:
        pool.close()


def test_a_limit_that_does_not_exist_is_an_error(limit: tuple[str, httpx.Client]) -> None:
    with pytest.raises(MissingLimitError):
        SlotPool(f"killswitch-test-missing-{uuid.uuid4().hex[:8]}").take(timeout_s=5)


def test_a_slot_given_back_goes_at_once_to_a_call_of_the_process_waiting_for_one(
    limit: tuple[str, httpx.Client],
) -> None:
    """The limit is full: a call waits the server's Retry-After (about a second here, up to
    30 s) unless the process's own slot comes back first — then it takes that one at once,
    whenever in the pool keeper's cycle the slot comes back."""
    name, _ = limit
    pool = SlotPool(name)
    waited: list[float] = []
    took: list[float] = []

    def call() -> None:
        lease = pool.take(timeout_s=60)
        took.append(time.monotonic())
        pool.give(lease)

    for step in range(16):  # the slot comes back at every point of the keeper's cycle
        held = [pool.take(timeout_s=10) for _ in range(LIMIT)]
        waiting = threading.Thread(target=call)
        waiting.start()
        # Once the call has been refused by the server and waits (a call in the middle of
        # asking the server takes the slot when its answer is back: that is a round trip).
        time.sleep(0.3 + 0.02 * step)
        given = time.monotonic()
        pool.give(held[0])
        waiting.join(60)
        waited.append(took[-1] - given)
        pool.give(held[1])
    pool.close()
    assert max(waited) < 0.2, [f"{w:.2f}" for w in waited]


def test_a_lease_the_server_took_back_is_no_longer_lent(limit: tuple[str, httpx.Client]) -> None:
    """A lease that lapsed (its renewals failed for LEASE_S: the server unreachable, the
    process stalled) is taken back by the server and its slot leased elsewhere: a busy
    process must stop lending it once its renewal is refused, or more calls than the limit
    are in flight."""
    name, api = limit
    pool, elsewhere = SlotPool(name, renew_s=1.0), SlotPool(name)  # renewed every second
    lease = pool.take(timeout_s=10)
    # What the server's repossessor does with a lapsed lease: frees its slot, forgets it.
    taken_back = api.post(
        "v2/concurrency_limits/decrement-with-lease", json={"lease_id": str(lease)}
    )
    assert taken_back.is_success
    theirs = [elsewhere.take(timeout_s=10) for _ in range(LIMIT)]  # the whole limit elsewhere
    lent, deadline = 0, time.monotonic() + 10  # a held lease is renewed by then
    while time.monotonic() < deadline:
        pool.give(lease)
        time.sleep(0.05)  # busy: never idle for LINGER_S
        try:
            lease = pool.take(timeout_s=0.1)
        except TimeoutError:
            break
        lent += 1
    else:
        pytest.fail(f"a lapsed lease lent {lent} times while the limit was held elsewhere")
    for each in theirs:
        elsewhere.give(each)
    pool.close()
    elsewhere.close()
