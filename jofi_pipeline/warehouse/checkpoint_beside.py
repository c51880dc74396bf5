"""The work database's checkpoint, run beside the publish instead of after it.

A run's merges leave their changes in the work database's WAL. Closing the connection writes
them into the file (a checkpoint), and that close came after the publish, on the run's last
stretch: ~50-120 ms a nightly of 300 test takers, more with history, where the publish's own
work leaves the disk idle. DuckDB checkpoints a database while other transactions read it, so
the checkpoint starts as the publish does (once the batch of history patched ahead that may still
run has ended: DuckDB refuses it while a batch writes, publish_ahead.py), on a cursor of its own,
and the close only waits for it before closing.

Nothing can be lost by it: a checkpoint DuckDB refuses (another write transaction is open: it
says so) leaves the WAL as it was (said in the log), and the close checkpoints whatever is left.
One that runs out of disk is another matter: DuckDB takes that as fatal and invalidates the
database for the rest of the process, so the publish beside it failed with "database has been
invalidated" and the run could not even record its failure (its sync_runs row kept the
`succeeded` written before the publish). So it begins only with room on the disk (`has_room`);
else the close checkpoints, after the publish and the run's record.

The close waits for it whatever interrupts the wait (a second Ctrl-C, Dagster's stop), as
`sync/uninterrupted.py` waits for a merge: a connection closed, or a process ending, under a
checkpoint still running aborts the interpreter.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from pathlib import Path
from shutil import disk_usage

import duckdb

from jofi_pipeline.warehouse.beside import Beside
from jofi_pipeline.warehouse.schema import ident

log = logging.getLogger(__name__)

# Free disk a checkpoint beside the publish needs besides twice the WAL (the checkpoint writes its
# changes into the file before the WAL goes) and the work database's size (what the publish beside
# it may write at most: a first publish copies every table, into its file and its Parquet).
CHECKPOINT_ROOM_MARGIN_BYTES = 64 * 1000**2


def has_room(work_db: Path) -> bool:
    """Whether the disk under `work_db` holds twice its WAL, the database's size and the margin: a
    checkpoint that runs out of disk invalidates the database (above)."""
    return disk_usage(work_db.parent).free >= room_needed(work_db)


def room_needed(work_db: Path) -> int:
    return 2 * _size(Path(f"{work_db}.wal")) + _size(work_db) + CHECKPOINT_ROOM_MARGIN_BYTES


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class CheckpointBeside:
    """`CHECKPOINT <catalog>` of `con`'s database in a thread of its own, started at once, or once
    `after` has ended (the batch of the publish's copy still running, which DuckDB would refuse it
    beside: the publish judges the work database meanwhile)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: str, after: threading.Event | None = None) -> None:
        self.catalog = catalog
        self._after = after
        self.error: Exception | None = None
        cursor = con.cursor()  # made here, by the connection's user: the thread only runs it
        self._step = Beside(partial(self._run, cursor), "work-checkpoint")
        self._ended = self._step.ended  # set once the checkpoint's cursor is closed

    def _run(self, cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            with cursor:
                if self._after is not None:
                    self._after.wait()
                cursor.execute(f"CHECKPOINT {ident(self.catalog)}")
        except Exception as exc:  # the WAL stays; the close checkpoints it
            self.error = exc
            log.warning("the work database's checkpoint beside the publish failed (the close tries again): %s", exc)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def wait(self) -> None:
        """Until the checkpoint has ended (before the connection it reads closes). An interruption
        meanwhile waits for it too, then goes on (Beside.result: on Python 3.11 a `Thread.join` it
        interrupts marks the thread ended while it still runs, so an event is waited for)."""
        self._step.result()
