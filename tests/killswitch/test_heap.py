"""The warm process's heap: settled (collected, then frozen) at start and after its first run
only; a one-shot process is left alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from killswitch import heap


class Node:
    """An object that can be part of a reference cycle."""

    other: Node | None = None


@pytest.fixture(autouse=True)
def fresh_heap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a new process would, and leaves this one unfrozen."""
    gc.unfreeze()
    monkeypatch.setattr(heap, "_warm", False)
    monkeypatch.setattr(heap, "_after_first_run", False)
    yield
    gc.unfreeze()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settling_collects_garbage_first_and_freezes_what_lives() -> None:
    garbage = cycle()
    alive = [Node() for _ in range(100)]
    frozen = heap.settle()
    assert garbage() is None  # collected, not frozen for ever
    assert frozen >= len(alive)
    scanned = {id(o) for o in gc.get_objects()}  # what a collection looks at: not the frozen
    assert not any(id(n) in scanned for n in alive)


def test_a_one_shot_process_is_left_as_python_makes_it() -> None:
    heap.ran()
    assert gc.get_freeze_count() == 0


def test_a_warm_process_settles_at_start_and_after_its_first_run_only() -> None:
    at_start = heap.keep_warm()
    assert at_start > 0
    made_by_the_first_run = [Node() for _ in range(1000)]
    heap.ran()
    after_first = gc.get_freeze_count()
    assert after_first >= at_start + len(made_by_the_first_run)
    made_by_the_second_run = [Node() for _ in range(1000)]
    heap.ran()
    assert gc.get_freeze_count() == after_first
    scanned = {id(o) for o in gc.get_objects()}
    assert all(id(n) in scanned for n in made_by_the_second_run)


def test_garbage_made_after_the_heap_settled_is_still_collected() -> None:
    heap.keep_warm()
    heap.ran()
    garbage = cycle()
    gc.collect()
    assert garbage() is None
