"""Python's cyclic garbage collector in a test process: no walks over what start-up loaded.

Each test process (every xdist worker) imports Dagster, SQLAlchemy, pyarrow, pandas and the
project before its first test: ~300,000 objects that live as long as the process. While they
are being created, every full collection walks all of them again, and the interpreter walks
them once more on its way out: ~1.4 and ~3 CPU-s of a process that collects the fast tier and
runs nothing (11.0 CPU-s in all; the console script pauses its collector for the same reason,
jofi_pipeline/collector.py). So the root conftest pauses the collector from its import until the
tests are collected, then freezes what exists (`gc.freeze()`: never walked again) and collects
as usual while the tests run. Reference counting frees objects as always; only the walks are
skipped. What start-up left as cyclic garbage stays until the process ends.

A test that counts which of its own objects are still alive calls `gc.collect()` first;
`only_new_objects_walked` keeps those collections to the objects made since it began.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False
_start_up_frozen = False


def pause_for_start_up() -> None:
    """No full collections while the process loads what its tests need."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def start_up_loaded() -> None:
    """The tests are collected: keep what exists out of every later collection, collect again."""
    global _paused, _start_up_frozen
    if _paused:
        gc.freeze()
        gc.enable()
        _paused, _start_up_frozen = False, True


@contextmanager
def only_new_objects_walked() -> Iterator[None]:
    """Full collections inside walk only the objects made since it began (one test collected at
    each of its 60 merges: each walk of a worker's whole heap cost ~0.25-0.5 s, ~20 CPU-s in all).
    Objects that existed before are frozen for its length: an object the code under test keeps
    alive stays alive either way, through an old object or a new one (a weak reference still
    sees it). Not for `gc.get_referrers`, which does not look among frozen objects."""
    gc.freeze()
    try:
        yield
    finally:
        gc.collect()  # the new objects' cyclic garbage, before any of them is frozen below
        _refreeze()


@contextmanager
def nothing_frozen() -> Iterator[None]:
    """No object frozen while it lasts, as in a process that never froze any: for a test of what
    the code under test freezes (frozen objects freed meanwhile would change the count), or one
    that asks `gc.get_referrers`."""
    gc.unfreeze()
    try:
        yield
    finally:
        if _start_up_frozen:
            gc.collect()
        _refreeze()


def _refreeze() -> None:
    """Frozen again what start-up froze (and what has been made since), if it froze anything."""
    gc.unfreeze()
    if _start_up_frozen:
        gc.freeze()
