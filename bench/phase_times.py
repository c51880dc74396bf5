"""Where a sync's time goes: seconds per step of the publish and of the merges, summed per sync.

Wraps the steps' functions in place (the same code runs, each call timed), for a bench that asks
which step history, or a change, makes slower. The publish's three lanes run side by side, so
their sums are each lane's own time, not shares of the wall time.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict

from jofi_pipeline.warehouse import integrity, publish, publish_ahead, store

# (label, owner, attribute): looked up where the callers find them at call time.
STEPS = (
    ("publish (whole)", store.RunWriter, "publish"),
    ("  fingerprints", store, "table_fingerprints"),
    ("  gate", integrity, "findings"),
    ("  Parquet lane", publish, "write_parquet"),
    ("  history patches lane", publish, "patch_histories"),
    ("  copies lane", publish, "copy_tables"),
    ("close", store.RunWriter, "close"),
    ("publish head start (beside the fetch)", publish_ahead.PublishAhead, "_run_batch"),
    ("entity merges", store.RunWriter, "_merge_entities"),
    ("child merges", store.RunWriter, "_replace_children"),
)


class PhaseTimes:
    """Install once; `take()` after each sync returns its seconds per step and starts again."""

    def __init__(self) -> None:
        self._seconds: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # the lanes add from their own threads

    def install(self) -> PhaseTimes:
        for label, owner, name in STEPS:
            setattr(owner, name, self._timed(label, getattr(owner, name)))
        return self

    def _timed(self, label: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self._seconds[label] += time.perf_counter() - started
        return timed

    def take(self) -> dict[str, float]:
        with self._lock:
            taken, self._seconds = dict(self._seconds), defaultdict(float)
        return {label: taken.get(label, 0.0) for label, _, _ in STEPS}
