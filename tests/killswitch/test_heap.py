"""The warm process's heap: settled (collected, then frozen) at start and after its first run
only; a one-shot process is left alone. Each check runs in a fresh interpreter: the
collector's state is the whole process's, and a test worker's own heap must not move."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PRELUDE = """
import gc, weakref
from killswitch import heap

class Node:
    other = None

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

def scanned(objects):
    '''How many of `objects` a collection still looks at (frozen ones it does not).'''
    seen = {id(o) for o in gc.get_objects()}
    return sum(id(o) in seen for o in objects)
"""


def in_a_fresh_process(check: str) -> None:
    code = PRELUDE + textwrap.dedent(check)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_settling_collects_garbage_first_and_freezes_what_lives() -> None:
    in_a_fresh_process(
        """
        garbage = cycle()
        alive = [Node() for _ in range(100)]
        assert heap.settle() >= len(alive)
        assert garbage() is None  # collected, not frozen for ever
        assert scanned(alive) == 0
        """
    )


def test_a_one_shot_process_is_left_as_python_makes_it() -> None:
    in_a_fresh_process(
        """
        made = [Node() for _ in range(100)]
        heap.ran()
        assert gc.get_freeze_count() == 0
        assert scanned(made) == len(made)
        """
    )


def test_a_warm_process_settles_at_start_and_after_its_first_run_only() -> None:
    in_a_fresh_process(
        """
        at_start = [Node() for _ in range(100)]
        assert heap.keep_warm() > 0
        assert scanned(at_start) == 0
        made_by_the_first_run = [Node() for _ in range(100)]
        heap.ran()
        assert scanned(made_by_the_first_run) == 0
        made_by_the_second_run = [Node() for _ in range(100)]
        heap.ran()
        assert scanned(made_by_the_second_run) == len(made_by_the_second_run)
        """
    )


def test_garbage_made_after_the_heap_settled_is_still_collected() -> None:
    in_a_fresh_process(
        """
        heap.keep_warm()
        heap.ran()
        garbage = cycle()
        gc.collect()
        assert garbage() is None
        """
    )
