"""Settled tables put into the publish's copy while the run still fetches: history tables
patched into a nightly's, every table copied into a first publish's.

A nightly's publish is CPU-bound on two cores, and history is most of what it adds there
(bench/publish_steps.py): the history tables' patches, their Parquet files, and the checkpoint
that writes the patched tables into the new file. The fetch before it mostly waits on the API.
So once the run will write a history table no more (`RunWriter.settled`: the runner knows the
order of its steps), that table is patched into the staged copy of the current version
(publish_history.py), its Parquet file written beside it and the copy checkpointed, here, in a
thread of its own at a lower CPU priority, on a cursor of the work database. One transaction
per batch: the fingerprint recorded for a table is the one of the snapshot its patch and its
Parquet file were made from, and a patch the sums do not prove exact leaves the copy as it was.

The publish (publish.build_database) takes a table as done when its fingerprint is still the one
recorded here: the same rows it would have patched in and written, by the same proof. A table
that changed again after all (a later step wrote it) is copied whole, as any changed table: its
copy is no longer the previous version's, so it is never patched from there. Nothing here is
visible before the publish's switch; the staged folder, with what this wrote, is dropped by a run
that does not publish, once this has stopped (`StagedVersion.discard` waits for it).

A first publish (no version yet) builds every table whole: ~0.9 s after the last answer at 1,000
test takers, two thirds of it copying the scorecards' tables and writing their Parquet files. So
there, a settled table (and its child and history tables) is copied whole into the empty
database (publish_template.py), placed in the staged folder by the first batch, its Parquet file
written beside it, in one transaction per batch, by the same rules: the publish takes a table
whose fingerprint is still the one recorded, and empties and copies again one written since.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

import duckdb

from jofi_pipeline.warehouse.publish import (
    AHEAD_DIR, PUBLISHED_STORAGE_VERSION, PreviousVersion, copy_tables, patch_starts, place_empty_database, shares_memory,
    table_fingerprints, write_parquet_file,
)
from jofi_pipeline.warehouse.publish_history import apply_patch
from jofi_pipeline.warehouse.publish_staging import StagedVersion
from jofi_pipeline.warehouse.schema import ident, literal
from jofi_pipeline.warehouse.tables import TABLES

log = logging.getLogger(__name__)

AHEAD_CATALOG = "jofi_publishing_ahead"
# The worker's nice value above the process's: below the fetch's threads, not so far that a
# publish waiting on its last batch starves on a busy machine (only root may raise it back then).
AHEAD_NICE = 10


class PublishAhead:
    """The background work on one staged version: `offer` tables as they settle (history tables
    patched into a copy of `previous`; with no previous version, every table copied into the empty
    database), `finish` before the publish attaches the copy (or the folder is dropped)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, staged: StagedVersion, previous: PreviousVersion | None) -> None:
        self.staged = staged
        self._con = con
        self._previous = previous
        self._placed = False  # a first publish's empty database is in the staged folder (the first batch's work)
        self._done: dict[str, str] = {}  # table -> the fingerprint its copy and Parquet file now hold
        self._offered: set[str] = set()
        self._batches: list[tuple[Future[None], duckdb.DuckDBPyConnection]] = []  # each with its cursor
        self._lock = threading.Lock()
        self._thread_id: int | None = None  # the worker's native id, once it runs (its priority)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            1, thread_name_prefix="jofi-publish-ahead", initializer=self._lower_priority
        )
        staged.before_discard(lambda: self.finish(drop_pending=True))

    def offer(self, names: Iterable[str]) -> None:
        """Put these tables into the copy in the background (the run writes them no more): only
        history tables into a copy of a previous version (the others are copied whole by the publish)."""
        wanted = [n for n in dict.fromkeys(names) if n not in self._offered and n in TABLES
                  and (self._previous is None or TABLES[n].kind == "history")]
        if not wanted or self._pool is None:
            return
        self._offered.update(wanted)
        cursor = self._con.cursor()  # made by the connection's user (as RunWriter.reader): the thread only runs it
        self._batches.append((self._pool.submit(self._run_batch, cursor, wanted), cursor))

    def finish(self, *, drop_pending: bool = False) -> dict[str, str]:
        """Wait for the batches offered, or only the one running (`drop_pending`: the publish does
        the others' work itself, or the folder or the connection goes); the tables done and the
        fingerprints they hold. Idempotent.

        The worker is put back to the process's priority where that is allowed (root; an ordinary
        user may not lower a nice value, and the publish then waits on a batch at AHEAD_NICE). The
        wait goes on through an interruption (raised once the batch has ended): the connection it
        reads through must not close under a running statement. Two threads may call it at once
        (the publish waits for it beside its gate while a staged copy dropped meanwhile does): both
        wait for the same batches, and a batch dropped has its cursor closed once."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)  # a second shutdown, by a second caller, does nothing
            self._normal_priority()
        if drop_pending:  # all at once, before waiting: the worker takes the next batch as one ends
            with self._lock:
                for batch, cursor in self._batches:
                    # Not begun: dropped (a cancelled future is never "done" to wait()); once.
                    if not batch.cancelled() and batch.cancel():
                        cursor.close()
        interrupted: BaseException | None = None
        for batch, _ in self._batches:
            while True:
                try:
                    batch.exception()  # waits; a batch says its own failure
                    break
                except CancelledError:
                    break
                except BaseException as exc:  # held until the batch running has ended
                    interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        with self._lock:
            return dict(self._done)

    def _run_batch(self, cursor: duckdb.DuckDBPyConnection, names: list[str]) -> None:
        try:
            self.staged.copied()
        except Exception:  # the publish meets the copy's failure itself, and says it
            cursor.close()
            return
        try:
            with cursor as cur:
                cur.execute("SET TimeZone = 'UTC'")
                if not shares_memory(cur):  # the lanes' rule: beside the merges, a batch would share their limit
                    return
                if self._previous is None and not self._placed:
                    place_empty_database(cur, self.staged.db_file)
                    self._placed = True
                cur.execute(f"ATTACH {literal(str(self.staged.db_file))} AS {ident(AHEAD_CATALOG)} "
                            f"(STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})")
                try:
                    done = self._batch(cur, names, self._patch_into if self._previous is not None else self._copy_into)
                    if done:
                        _checkpoint(cur, done)
                finally:
                    cur.execute(f"DETACH DATABASE IF EXISTS {ident(AHEAD_CATALOG)}")
        except Exception as exc:  # only a head start: the publish does whatever is not done here
            log.warning("could not %s %s into the publish's copy ahead of the publish (the publish will): %s",
                        "patch" if self._previous is not None else "copy", ", ".join(names), exc)

    def _batch(self, cur: duckdb.DuckDBPyConnection, names: list[str], put) -> dict[str, str]:
        """One transaction: the tables' fingerprints, `put` (returns the tables it wrote into the copy;
        none: the batch is undone), their Parquet files; all or none."""
        cur.begin()
        try:
            snapshot = table_fingerprints(cur, names)  # of what this transaction reads
            written = put(cur, snapshot)
            if not written:
                cur.rollback()
                return {}
            folder = self.staged.version_dir / AHEAD_DIR
            folder.mkdir(exist_ok=True)
            for name in written:
                write_parquet_file(cur, name, folder / f"{name}.parquet")
        except BaseException:
            cur.rollback()
            raise
        cur.commit()
        done = {n: snapshot[n] for n in written}
        with self._lock:
            self._done.update(done)
        return done

    def _patch_into(self, cur: duckdb.DuckDBPyConnection, snapshot: dict[str, str]) -> list[str]:
        """History tables patched into the copy of the previous version, each proven by its sums."""
        changed = [n for n in snapshot if snapshot[n] != self._previous.fingerprints.get(n)]
        since = patch_starts(cur, self._previous, changed, AHEAD_CATALOG)
        proven = {n: apply_patch(cur, TABLES[n], AHEAD_CATALOG, self._previous.fingerprints.get(n), snapshot[n], since[n])
                  for n in changed}
        # None: not tried, nothing written (an empty copy, another schema): left to the publish.
        # False: written but not proven: the whole batch is undone, and left to the publish.
        patched = [n for n, exact in proven.items() if exact]
        return [] if False in proven.values() else patched

    def _copy_into(self, cur: duckdb.DuckDBPyConnection, snapshot: dict[str, str]) -> list[str]:
        """Tables copied whole into the empty database of a first publish."""
        copy_tables(cur, list(snapshot), AHEAD_CATALOG)
        return list(snapshot)

    @property
    def running(self) -> bool:
        """A batch still runs (one that an interruption of `finish` did not let end)."""
        return any(batch.running() for batch, _ in self._batches)

    def _lower_priority(self) -> None:
        """The worker yields the cores to the fetch's event loop and merges (Linux: a thread's own
        nice value, AHEAD_NICE above the process's)."""
        self._thread_id = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, self._thread_id, min(19, os.getpriority(os.PRIO_PROCESS, 0) + AHEAD_NICE))
        except (AttributeError, OSError):
            pass

    def _normal_priority(self) -> None:
        """Back to the process's priority where allowed (lowering a nice value needs the privilege)."""
        if self._thread_id is None:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, self._thread_id, os.getpriority(os.PRIO_PROCESS, os.getpid()))
        except (AttributeError, OSError):
            pass


def _checkpoint(cur: duckdb.DuckDBPyConnection, done: dict[str, str]) -> None:
    """The patched tables into the copy's file now; if that fails they stay in its WAL, which the
    publish's ATTACH reads back (and its checkpoint writes): still done, only not yet in the file."""
    try:
        cur.execute(f"CHECKPOINT {ident(AHEAD_CATALOG)}")
    except duckdb.Error as exc:
        log.warning("patched %s into the publish's copy ahead of the publish, but could not checkpoint it there "
                    "(the publish will): %s", ", ".join(done), exc)


