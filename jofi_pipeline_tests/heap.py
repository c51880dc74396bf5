"""Full collections inside a test that walk only what the test made.

A test that counts which of its objects are still alive calls `gc.collect()` first, so that garbage
in cycles is not counted as held. In a test worker every full collection walks everything loaded
before the test too (Dagster, DuckDB, hypothesis, earlier tests' leftovers: ~0.25-0.5 s of CPU
each); one test that collected at each of its 60 merges spent ~20 CPU-s on it. Objects that existed
before the test are frozen (`gc.freeze()`) for its length: its collections skip them and free the
test's own cyclic garbage as before. An object the run keeps alive stays alive either way, through
an old object or a new one (a weak reference still sees it). Not for `gc.get_referrers`, which does
not look among frozen objects.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def only_new_objects_walked() -> Iterator[None]:
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
