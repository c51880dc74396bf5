"""Per-mode warehouse store: one writer at a time stages, merges and publishes.

The files it works on (the working database, the lock, the published pair) are named by
`paths.ModePaths`; what is published is read back through `published.PublishedWarehouse`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from jofi_pipeline import json_codec, settings
from jofi_pipeline.settings import Mode
from jofi_pipeline.warehouse import fetch_outcomes, fetch_state, flatten, history, identity, integrity, merge
from jofi_pipeline.warehouse.beside import Beside
from jofi_pipeline.warehouse.checkpoint_beside import CheckpointBeside, has_room
from jofi_pipeline.warehouse.diagnose import WarehouseLockedError, open_failure, restore_work_db
from jofi_pipeline.warehouse.errors import (
    ModeMismatchError, PublishError, PublishRefusedError, UnknownEntityError, WarehouseError, out_of_memory,
)
from jofi_pipeline.warehouse.fetch_outcomes import Missed, Remembered
from jofi_pipeline.warehouse.identity import Identity
from jofi_pipeline.warehouse.keyset import KeySet
from jofi_pipeline.warehouse.lock import ModeLock
from jofi_pipeline.warehouse.paths import ModePaths
from jofi_pipeline.warehouse.publish import previous_version, publish, stage, staged_for, table_fingerprints, unchanged
from jofi_pipeline.warehouse.publish_ahead import PublishAhead
from jofi_pipeline.warehouse.publish_staging import StagedVersion
from jofi_pipeline.warehouse.remote import RemoteOutcome, RemotePublisher, outcome_state, write_state
from jofi_pipeline.warehouse.records import (
    CoverageRecord,
    FetchRecord,
    MergeCounts,
    PublishResult,
    SyncRunRecord,
    UpsertCounts,
)
from jofi_pipeline.warehouse.schema import ensure_schema, ident
from jofi_pipeline.warehouse.tally import RunCounts, RunTally
from jofi_pipeline.warehouse.tables import (
    ENTITY_TABLES,
    FETCH_OUTCOMES,
    FETCH_STATE,
    HISTORY,
    SYNC_COVERAGE,
    SYNC_RUNS,
    TABLES,
    TableSpec,
    children_of,
)

log = logging.getLogger(__name__)

# DuckDB's own allocator keeps memory its queries freed until a query's peak passes this threshold
# (default 128 MB), so a large warehouse held up to that much more than it used; flushed after any
# query past 16 MB, and purged in the background, a 10,000-test-taker sync peaked ~18 MB lower
# (461 -> 443 MB) at no cost in CPU.
WORK_DB_ALLOCATOR = {"allocator_flush_threshold": "16MB", "allocator_background_threads": "true"}
WORK_DB_PEEK_WAIT_SECONDS = 3.0
# DuckDB threads of the work database while a run fetches and merges. The event loop's thread and
# the merge's own thread already keep both cores of a small machine busy; DuckDB's extra worker
# only competed with them, and its hand-offs and per-thread partial results cost CPU of their own.
# A full sync of 2,000 test takers spent ~2-2.5 s of CPU in that worker; with one thread its work
# moves to the merge's thread and the whole process spends ~2 % less CPU (small: paired runs on
# a 2-core machine, about the size of their spread). The publish, which runs alone, gets DuckDB's
# default back (RunWriter.publish), but for the build of a work database past the lanes' budget
# (publish.build_database: one lane, one thread).
WORK_DB_FETCH_THREADS = 1


def redact(text: str | None) -> str | None:
    """Defence in depth: the store never receives the API key, but an error text might quote one."""
    return None if text is None else settings.redact_keys(text)


class WarehouseStore:
    """Paths of one mode's warehouse, and the door to its single writer."""

    def __init__(self, data_dir: Path, mode: Mode, remote: RemotePublisher | None = None) -> None:
        self.paths = ModePaths(Path(data_dir), mode)
        self.remote = remote  # also upload each published version there (JOFI_PUBLISH_URL)
        self.mode: Mode = self.paths.mode
        self.data_dir = self.paths.data_dir
        self.mode_dir = self.paths.mode_dir
        self.published_db_path = self.paths.published_db
        self.parquet_dir = self.paths.parquet
        self.work_db_path = self.paths.work_db
        self.lock_path = self.paths.lock

    def open_run(self, run_id: str, started_at: datetime, whose: Identity | None = None) -> RunWriter:
        """Check whose data this is, take the mode's writer lock (or raise WarehouseBusyError), open the work DB.

        `whose`: the mode, account and API host the run is about to write. It is checked against the
        folder's identity (identity.py) before anything is written, and recorded on first use. Without
        it (tests that write by hand) only the folders are checked and a recorded identity is kept.
        """
        if whose is not None and whose.mode != self.mode:
            raise ModeMismatchError(f"refusing to write {whose.describe()} into the {self.mode} warehouse; nothing was written")
        try:
            memory_limit = settings.work_memory()
        except ValueError as exc:
            raise WarehouseError(f"{exc}; nothing was written") from None
        if whose is not None:
            must_record = identity.verify(self.paths, whose)
        else:
            identity.guard_folder(self.paths)
            must_record, whose = False, identity.recorded(self.paths)
        lock = ModeLock(self.lock_path, self.mode)
        try:
            lock.acquire(run_id)
        except OSError as exc:
            raise WarehouseError(
                f"cannot write the {self.mode} warehouse under {self.mode_dir} ({exc.strerror or exc}); "
                "point JOFI_DATA_DIR (or --data-dir) at a writable directory"
            ) from None
        try:
            # Again under the lock (before it, another sync may have held the file): on first use by
            # a read-only look before the identity is recorded and the file opened (so a refusal or a
            # failed record writes nothing); on every later run through the writer's own connection.
            if must_record and whose is not None:
                identity.check_work_db(self.paths, whose)
                try:
                    identity.record(self.paths, whose)
                except OSError as exc:
                    raise WarehouseError(f"cannot write {self.paths.identity} ({exc.strerror or exc}); nothing else was written") from None
            con = self._connect_work_db()
            try:
                if whose is not None and not must_record:
                    identity.check_account_rows(con, self.paths, whose)
                con.execute("SET TimeZone = 'UTC'")
                # Bounded memory whatever the account's size: DuckDB spills to work/ beyond this.
                con.execute(f"SET memory_limit = '{memory_limit}B'")
                for name, value in WORK_DB_ALLOCATOR.items():
                    con.execute(f"SET {name} = '{value}'")
                con.execute(f"SET threads = {WORK_DB_FETCH_THREADS}")
                ensure_schema(con, comments=False)  # analysts read the published copy, which has them
                history_started = _start_history(con)
            except BaseException as exc:
                con.close()
                if isinstance(exc, duckdb.Error):
                    raise self._work_db_failure(exc) from None
                raise
        except BaseException:
            lock.release()
            raise
        writer = RunWriter(self, con, lock, run_id, started_at, account_id=whose.account_id if whose else None)
        writer.history_started = history_started
        return writer

    def upload_version(self, version_dir: Path, row_counts: dict[str, int] | None = None, *, resume: bool = False) -> RemoteOutcome:
        """Copy a published version to the object store; the caller holds the writer lock.

        The local record says `uploading` first, so a killed upload shows in `status` as one
        that never finished.
        """
        if self.remote is None:
            raise WarehouseError(f"no object store configured: set {settings.ENV_PUBLISH_URL}=s3://bucket/prefix")
        self._record_remote(state="uploading", mode=self.mode, url=str(self.remote.url), version=version_dir.name,
                            pid=os.getpid())
        outcome = self.remote.publish(self.mode, version_dir, row_counts, resume=resume)
        self._record_remote(**outcome_state(outcome))
        (log.info if outcome.ok else log.warning)("%s: %s", self.mode, outcome.describe())
        return outcome

    def _record_remote(self, **state: Any) -> None:
        try:
            write_state(self.paths.remote_state, **state)
        except OSError as exc:  # bookkeeping only: the upload itself decides the outcome
            log.warning("could not write %s: %s", self.paths.remote_state, exc)

    def upload_current(self) -> RemoteOutcome:
        """Upload the version analysts see locally now (only what the store lacks), under the lock."""
        current = self.paths.current
        if not current.is_symlink():
            raise WarehouseError(f"nothing published for {self.mode} under {self.mode_dir}; run a sync first")
        lock = ModeLock(self.lock_path, self.mode)
        lock.acquire("publish-remote")
        try:
            return self.upload_version(current.parent / os.readlink(current), resume=True)
        finally:
            lock.release()

    def _connect_work_db(self) -> duckdb.DuckDBPyConnection:
        """The working database, or a WarehouseError that says what to do (diagnose.py).

        Called under the writer lock. A sync still waiting for that lock peeks at the file read-only
        for a few milliseconds (identity.check_work_db), which blocks opening it here: wait that out.
        """
        deadline = time.monotonic() + WORK_DB_PEEK_WAIT_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.work_db_path))
            except (duckdb.Error, OSError) as exc:
                failure = self._work_db_failure(exc)
                if not isinstance(failure, WarehouseLockedError) or time.monotonic() >= deadline:
                    raise failure from None
                time.sleep(0.05)

    def _work_db_failure(self, exc: BaseException) -> WarehouseError:
        """Locked: close the other session (the file is fine). Damaged, and only then: restore it.
        Out of memory: raise JOFI_WORK_MEMORY (the file is fine)."""
        if isinstance(exc, duckdb.OutOfMemoryException):
            return WarehouseError(out_of_memory(exc))
        return open_failure(
            self.work_db_path, exc, what="the working database",
            locked=f"Close that session (or let it finish), then run the {self.mode} sync again.",
            damaged=restore_work_db(self.paths),
        )


class RunWriter:
    """The one writer of a mode for one run. Context manager; leaving it never publishes."""

    def __init__(
        self, store: WarehouseStore, con: duckdb.DuckDBPyConnection, lock: ModeLock, run_id: str, started_at: datetime,
        account_id: int | None = None,
    ) -> None:
        self.store = store
        self.mode = store.mode
        self.run_id = run_id
        self.started_at = started_at
        self.account_id = account_id  # whose data this is (identity.py); the publish gate checks it
        self.findings: list[integrity.Finding] = []  # the last publish gate's judgement
        self._con: duckdb.DuckDBPyConnection | None = con
        self._lock = lock
        self.tally = RunTally()  # what this run changed, each row once (sync_runs and summaries)
        # History tables begun from existing rows when this run opened (a warehouse built before
        # history existed): table -> rows. Empty on every later run, so it is said once.
        self.history_started: dict[str, int] = {}
        self._staged: StagedVersion | None = None  # stage_publish's copy, until publish takes it
        self._ahead: PublishAhead | None = None  # settled tables put into that copy (publish_ahead.py)
        self._checkpoint: CheckpointBeside | None = None  # the work database's, begun with the publish
        # Per history table, the keys this run has versioned so far (store._record_versions), as numbers.
        self._run_versioned: dict[str, KeySet | None] = {}
        # The history tables where this run id held current versions before this writer (read once).
        self._reused_in: frozenset[str] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the work DB, drop a copy staged for a publish that never came, release the lock (idempotent)."""
        con, self._con = self._con, None
        staged, self._staged = self._staged, None
        checkpoint, self._checkpoint = self._checkpoint, None
        ahead, self._ahead = self._ahead, None
        try:
            try:
                try:
                    if ahead is not None:  # it reads through this connection and writes into the staged folder
                        ahead.finish(drop_pending=True)  # an interruption is raised once its batch has ended
                finally:
                    if checkpoint is not None:  # it reads through this connection; an interruption of
                        checkpoint.wait()  # the wait goes on once it has ended, and after the close
            finally:
                try:
                    # Never under a running checkpoint (that aborts the interpreter): only a second
                    # signal within microseconds gets out of the wait before it ends, and then the
                    # connection is left to be closed when the process ends, after the checkpoint.
                    if con is not None and (checkpoint is None or checkpoint.ended) and (ahead is None or not ahead.running):
                        con.close()
                finally:
                    if staged is not None:
                        staged.discard()
        finally:
            self._lock.release()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise WarehouseError(f"run {self.run_id!r} is closed; open a new one with WarehouseStore.open_run")
        return self._con

    # -- writing --------------------------------------------------------------------------------

    def upsert(
        self, entity: str, objects: Iterable[Mapping[str, Any]], synced_at: datetime, *, fetched: Sequence[FetchRecord] = ()
    ) -> UpsertCounts:
        """Merge API objects into the entity's table and its child tables, in one transaction.

        Known keys get the shallow merge of stored and new raw JSON; children are replaced only
        for parents whose object carries the child list. `fetched` (fetch_state rows saying why
        these objects were asked for) commits in the same transaction, so the record of having
        fetched something never outlives or predates the data. Returns counts per table touched.
        """
        spec = entity_spec(entity)
        objects = list(objects)
        self._refuse_other_mode(entity, objects)
        batch, skipped = fold_by_key(spec, objects)
        counts: UpsertCounts = {spec.name: MergeCounts(skipped=skipped, drift=flatten.drift_of(spec, objects))}
        if skipped:
            log.warning("upsert %s: %d object(s) without a usable key were not stored", entity, skipped)
        with self._transaction():
            if batch:
                versions, inserted = self._merge_entities(spec, batch, synced_at, counts[spec.name])
                if versions is not None:
                    counts[HISTORY[spec.name].name] = versions
                for child_spec in children_of(spec.name):
                    counts[child_spec.name] = self._replace_children(child_spec, batch, synced_at, counts, inserted)
            if fetched:
                state_rows = fetch_state.rows_of(self.mode, self.run_id, fetched, synced_at)
                counts[FETCH_STATE.name] = self._tally_rows(FETCH_STATE, state_rows)
                fetch_state.record(self.con, state_rows)
        return counts

    def mark_deleted(self, entity: str, keys: Iterable[Any], deleted_at: datetime) -> int:
        """Mark known records the API now answers 404 for; rows are kept. Returns rows newly marked
        (the run counts them as updated).

        Keys are scalars for single-column keys, tuples for scorecards (test_taker_id, short_name).
        """
        spec = entity_spec(entity)
        key_rows = [dict(zip(spec.key, k if isinstance(k, tuple) else (k,), strict=True)) for k in keys]
        if not key_rows:
            return 0
        table = pa.table(
            {n: pa.array([r[n] for r in key_rows], type=flatten.ARROW_TYPES[spec.column(n).type]) for n in spec.key}
        )
        with self._transaction():
            marked = merge.mark_deleted(self.con, spec, table, deleted_at)
            self.tally.wrote(spec.name, existing=marked)
            if spec.name in HISTORY:
                hist = HISTORY[spec.name]
                self.tally.wrote_children(hist.name, history.record_deletes(self.con, hist, table, deleted_at, self.run_id))
            return len(marked)

    def held_keys(self, entity: str, keys: Iterable[Any]) -> set[Any]:
        """The keys (scalars, or tuples for scorecards) of `entity` the warehouse holds, deleted or not."""
        spec = entity_spec(entity)
        wanted = [k if isinstance(k, tuple) else (k,) for k in keys]
        if not wanted:
            return set()
        held = set(merge.stored_raw(self.con, spec, wanted))
        return {k for k in keys if (k if isinstance(k, tuple) else (k,)) in held}

    def remember_missed(self, entity: str, outcome: str, missed: Sequence[Missed], now: datetime) -> dict[str, int]:
        """Record records a run did not get (fetch_outcomes); returns record_key -> failed runs in a row."""
        with self._transaction():
            self._tally_rows(FETCH_OUTCOMES, [{"entity": entity, "record_key": m.record_key} for m in missed])
            return fetch_outcomes.record(self.con, self.mode, self.run_id, entity, outcome, missed, now)

    def forget_missed(self, entity: str, record_keys: Iterable[str]) -> int:
        """Records fetched after all: their fetch_outcomes rows go."""
        with self._transaction():
            return fetch_outcomes.forget(self.con, entity, record_keys)

    def remembered(self, entity: str | None = None) -> list[Remembered]:
        """The fetch_outcomes rows (of `entity`)."""
        return fetch_outcomes.remembered(self.con, entity)

    def correct_failed_runs(self, failed: Mapping[str, str | None]) -> list[str]:
        """Runs (run id -> reason) the attempts file says failed that sync_runs says succeeded or
        partial: a run writes that row before its publish, and one whose database DuckDB stopped
        (a fatal error) could not write its failure after it. Set to failed, with the attempt's
        reason, before this run publishes them; returns their ids."""
        if not failed:
            return []
        wrong = [row[0] for row in self.con.execute(
            "SELECT run_id FROM sync_runs WHERE status IN ('succeeded', 'partial') AND list_contains(?, run_id) ORDER BY 1",
            [list(failed)]).fetchall()]
        if wrong:
            with self._transaction():
                self.con.executemany(
                    "UPDATE sync_runs SET status = 'failed', error = ?, _last_synced_at = now() WHERE run_id = ?",
                    [[redact(failed[run_id] or "the run failed after this row was written"), run_id] for run_id in wrong])
        return wrong

    def record_run(self, run: SyncRunRecord) -> RunCounts:
        """Write (or rewrite) the run's row in sync_runs and its coverage rows, committed together.

        The row's rows_inserted/rows_updated are this writer's tally (the run row and its coverage
        rows included) unless `run` brings its own; returns the counts written.
        """
        now = datetime.now(UTC)
        system = {"_mode": self.mode, "_first_synced_at": now, "_last_synced_at": now}
        coverage = [coverage_row(run.run_id, c, run.finished_at or now) | system for c in run.coverage]
        run_row = {
            "run_id": run.run_id,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": run.status,
            "error": redact(run.error),
            "rows_inserted": None,
            "rows_updated": None,
            "requests_total": run.requests_total,
            "requests": redact(flatten.dump_json(run.requests_by_route)),
            "coverage": flatten.dump_json([{k: _jsonable(v) for k, v in c.items() if not k.startswith("_")} for c in coverage]),
            "drift": flatten.dump_json({table: d.to_dict() for table, d in sorted(run.drift.items()) if d}),
            **system,
        }
        with self._transaction():
            self._tally_rows(SYNC_RUNS, [run_row])
            self._tally_rows(SYNC_COVERAGE, coverage)
            tallied = self.tally.counts()
            counts = RunCounts(
                inserted=tallied.inserted if run.rows_inserted is None else dict(run.rows_inserted),
                updated=tallied.updated if run.rows_updated is None else dict(run.rows_updated),
            )
            run_row |= {"rows_inserted": flatten.dump_json(counts.inserted), "rows_updated": flatten.dump_json(counts.updated)}
            merge.replace_rows(self.con, SYNC_RUNS, flatten.arrow_table(SYNC_RUNS, [run_row]))
            self.con.execute(f"DELETE FROM {ident(SYNC_COVERAGE.name)} WHERE run_id = ?", [run.run_id])
            merge.replace_rows(self.con, SYNC_COVERAGE, flatten.arrow_table(SYNC_COVERAGE, coverage))
        return counts

    def publish(self) -> PublishResult:
        """Atomically replace the published DuckDB file and Parquet tree with the work data.

        Gated: the work database must keep every blocking integrity rule (integrity.py: one mode,
        one account, unique keys, the references the sync guarantees), or PublishRefusedError and
        the published copies stay byte-identical.
        """
        self.con.execute("RESET threads")  # the publish runs alone: all cores (see WORK_DB_FETCH_THREADS)
        if self._checkpoint is not None:  # an earlier publish of this run's (tests publish twice)
            self._checkpoint.wait()
        # What the run patched into its staged copy while it fetched (publish_ahead.py): the batch
        # under way ends before the work database's checkpoint begins (DuckDB refuses it while the
        # batch writes) and before the build; one not begun is left to the publish's lanes. It ends
        # while the gate judges: it writes only into the staged copy, on one thread, and at
        # concurrency 64 a first publish waited ~0.2 s for it before the ~0.16 s of fingerprints and
        # gate could begin.
        ahead_work = self._ahead
        ending = Beside(partial(ahead_work.finish, drop_pending=True), "publish-ahead-end") if ahead_work else None
        self._ahead = None  # only once it is being waited for: else the close waits for it
        try:
            # The WAL into the file while the publish reads, not at the close after it (checkpoint_beside.py),
            # when the disk has room for it.
            if has_room(self.store.paths.work_db):
                catalog = self.con.execute("SELECT current_database()").fetchone()[0]
                self._checkpoint = CheckpointBeside(self.con, catalog, after=ending.ended if ending is not None else None)
            else:
                log.warning("%s: little free disk under %s: its checkpoint waits for the close, after the publish",
                            self.mode, self.store.paths.work_db)
            previous = previous_version(self.store.paths)
            # The copy of the current file the new version starts from is written and flushed to disk
            # in the background (publish_staging.py): since stage_publish if the run called it, else
            # from now, while the fingerprints and the gate run.
            early, self._staged = self._staged, None
            staged = staged_for(self.store.paths, previous, early)
            try:
                # The verdicts of the last publish stand for the tables unchanged since (same fingerprints).
                fingerprints = table_fingerprints(self.con)
                judged = integrity.Judged.from_json(previous.judged, previous.fingerprints) if previous and previous.judged else None
                self.findings = integrity.findings(self.con, self.mode, self.account_id, fingerprints, judged)
                refused = integrity.refusals(self.findings)
                if refused:
                    raise PublishRefusedError(integrity.refusal_line(refused), self.findings)
                verdicts = integrity.verdicts_json(self.mode, self.account_id, self.findings)
                # Here, so that an interruption held until the batch has ended drops the staged copy too.
                ahead_done = ending.result() if ending is not None else None
            except BaseException as exc:
                staged.discard()
                if isinstance(exc, (OSError, duckdb.Error)):  # the disk's or DuckDB's; a bug keeps its type and traceback
                    raise unchanged(exc) from exc
                raise
        except BaseException:
            if ending is not None:  # never left running under the connection the close closes
                with contextlib.suppress(Exception):  # the publish's own error is the one to raise
                    ending.result()
            raise
        ahead = ahead_done if ahead_work is not None and ahead_work.staged is staged else None  # not of a copy dropped
        result = publish(self.con, self.store.paths, fingerprints=fingerprints, previous=previous, judged=verdicts,
                         staged=staged, ahead=ahead)
        log.info("published %s warehouse in %.2fs: %s", self.mode, result.seconds, result.row_counts)
        return result

    def stage_publish(self) -> None:
        """Start copying the current version's file for this run's publish now, so the copy and its
        flush overlap the fetching instead of the publish (publish_staging.py).

        The writer lock keeps that version current until this run publishes. The copy is dropped if
        the run ends without publishing; if it cannot even start, the publish tries again itself
        (and says what failed then)."""
        if self._staged is not None:
            return
        previous = previous_version(self.store.paths)
        try:
            self._staged = stage(self.store.paths, previous)
        except PublishError as exc:
            log.warning("%s: could not start copying the published version ahead of the publish: %s", self.mode, exc)
            return
        if previous is None or HISTORY:  # a first publish copies every table ahead; a later one patches history
            self._ahead = PublishAhead(self.con, self._staged, previous)

    def settled(self, tables: Iterable[str]) -> None:
        """This run writes these entity tables (and their child tables) no more: they and their
        history tables may go into the staged copy now, in the background (publish_ahead.py takes
        what it can use). Only a head start: whatever changes after all is published as any changed table."""
        if self._ahead is None:
            return
        names = [name for table in tables for t in (table, *(c.name for c in children_of(table)))
                 for name in (t, *((HISTORY[t].name,) if t in HISTORY else ()))]
        self._ahead.offer(names)

    def upload(self, published: PublishResult) -> PublishResult:
        """Copy what `publish` just switched to the object store, if one is configured.

        Separate from `publish`: the local copy is the record and is already switched; an upload
        that fails is reported in the result, not raised, so it can never undo the local publish.
        """
        if self.store.remote is None or published.version_dir is None:
            return published
        outcome = self.store.upload_version(published.version_dir, published.row_counts)
        return dataclasses.replace(published, remote=outcome)

    # -- reading --------------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the work database (e.g. to find open records to refresh by id)."""
        return self.con.execute(sql, params or []).fetchall()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A second connection to the work database, for reading while a batch is being written.

        DuckDB connections are not shared between threads; the run writes batches in a worker
        thread while it reads its fetch plan page by page, so the reads get their own connection.
        The caller closes it.
        """
        return self.con.cursor()

    def rows_held(self, table: str) -> int:
        """Rows a table holds, deleted-marked ones included (coverage's `rows_held`)."""
        if table not in TABLES:
            raise UnknownEntityError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        return self.con.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0]

    # -- internals ------------------------------------------------------------------------------

    def _refuse_other_mode(self, entity: str, objects: list[Mapping[str, Any]]) -> None:
        for obj in objects:
            if isinstance(obj, Mapping) and "mode" in obj and obj["mode"] != self.mode:
                raise ModeMismatchError(
                    f"refusing to write {entity}: an object says mode={obj['mode']!r} but this is the "
                    f"{self.mode!r} warehouse; nothing was written. Check which API key the sync used."
                )

    def _transaction(self) -> _Transaction:
        return _Transaction(self.con, self.tally)

    def _tally_rows(self, spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> MergeCounts:
        """Note rows about to be written by key (before the write: was each key there already?)."""
        keys = list(dict.fromkeys(tuple(row[name] for name in spec.key) for row in rows))
        existing = merge.existing_keys(self.con, spec, keys)
        new = [key for key in keys if key not in existing]
        self.tally.wrote(spec.name, new=new, existing=existing)
        return MergeCounts(inserted=len(new), updated=len(existing))

    def _merge_entities(
        self, spec: TableSpec, batch: dict[tuple[Any, ...], dict[str, Any]], synced_at: datetime, counts: MergeCounts
    ) -> tuple[MergeCounts | None, set[tuple[Any, ...]]]:
        """Merge the batch into the entity table and open history versions; the history's counts
        and the keys this merge inserted."""
        stored = merge.stored_raw(self.con, spec, list(batch))
        rows, raws, actions, hashes = [], [], [], []
        new, changed_keys = [], []
        versioned = []  # per staged row: does its key have a current version (held and not deleted)
        for key, incoming in batch.items():
            previous = stored.get(key)
            if previous is None:
                action, raw = "insert", incoming
                counts.inserted += 1
                new.append(key)
                versioned.append(False)
            else:
                old_raw = json_codec.loads(previous[0]) if previous[0] else {}
                merged = {**old_raw, **incoming}
                if flatten.content(merged) == flatten.content(old_raw) and previous[1] is None:
                    counts.unchanged += 1  # left as it is: nothing to stage, merge or version
                    continue
                action, raw = "update", merged
                counts.updated += 1
                changed_keys.append(key)
                versioned.append(previous[1] is None)
            rows.append(flatten.typed_tuple(spec, raw))
            raws.append(flatten.dump_json(raw))
            actions.append(action)
            hashes.append(flatten.content_hash(raw))
        if not rows:
            return (MergeCounts() if spec.name in HISTORY else None), set()
        staged = flatten.rows_table(
            spec, rows, {"_mode": self.mode, "_first_synced_at": synced_at, "_last_synced_at": synced_at, "_deleted_at": None},
            given={"_raw": raws, "_action": actions, "_row_hash": hashes}, extra={"_action": pa.string(), "_row_hash": pa.string()},
        )
        merge.merge_entities(self.con, spec, staged)
        self.tally.wrote(spec.name, new=new, existing=changed_keys)
        if spec.name in HISTORY:
            # Only what the merge inserted or updated can open a version: an unchanged record
            # costs history nothing (it is not even staged).
            hist = HISTORY[spec.name]
            versions = self._record_versions(hist, staged, versioned, synced_at)
            self.tally.wrote_children(hist.name, versions.inserted)
            return versions, set(new)
        return None, set(new)

    def _record_versions(self, hist: TableSpec, staged: pa.Table, versioned: list[bool], synced_at: datetime) -> MergeCounts:
        """Versions of merged rows. The keys this run has not versioned yet take the short way
        (history.record_changed_versions: the merge already knows which keys changed and which have
        a current version); the others may hold a version this run opened, to complete in place."""
        keys = list(zip(*(staged[n].to_pylist() for n in hist.key[:-1]), strict=True))
        seen = self._versioned_keys(hist)
        # Noted as versioned now, even if this transaction is rolled back: the long way is always right.
        again = pa.array(seen.add_each(keys), type=pa.bool_()) if seen is not None else None
        parts = []
        if again is None or pc.any(again).as_py():
            redo = staged if again is None else staged.filter(again)
            parts.append(history.record_versions(self.con, hist, redo, synced_at, self.run_id))
        if again is not None and not pc.all(again).as_py():
            change = pc.if_else(pa.array(versioned, type=pa.bool_()), flatten.arrow_string("update"), flatten.arrow_string("insert"))
            fresh = staged.append_column("_change", change).filter(pc.invert(again))
            parts.append(history.record_changed_versions(self.con, hist, fresh, synced_at, self.run_id))
        return MergeCounts(inserted=sum(c.inserted for c in parts), updated=sum(c.updated for c in parts))

    def _versioned_keys(self, hist: TableSpec) -> KeySet | None:
        """Keys of `hist` this run may have opened a version of; None if it cannot tell (its run id
        already holds current versions there, written before this writer: every key goes the long way)."""
        if hist.name not in self._run_versioned:
            if self._reused_in is None:  # asked of every history table at once, the first time any is written
                self._reused_in = history.tables_with_current_versions_of(self.con, self.run_id)
            self._run_versioned[hist.name] = None if hist.name in self._reused_in else KeySet()
        return self._run_versioned[hist.name]

    def _replace_children(
        self, spec: TableSpec, batch: dict[tuple[Any, ...], dict[str, Any]], synced_at: datetime, upsert_counts: UpsertCounts,
        new_parents: set[tuple[Any, ...]],
    ) -> MergeCounts:
        """Make each listed parent's children the ones its object lists. Parents the same upsert
        inserted (`new_parents`: a first sync, new scorecards) have none yet: theirs are added
        (merge.add_children_of_new_parents), with nothing to delete or compare."""
        listed = [(key, obj) for key, obj in batch.items() if flatten.has_child_list(spec, obj)]
        if not listed:
            return MergeCounts()
        all_new = all(key in new_parents for key, _ in listed)
        parents = pa.table(
            {n: pa.array([key[i] for key, _ in listed], type=flatten.ARROW_TYPES[spec.column(n).type])
             for i, n in enumerate(spec.parent_columns)}
        )
        system = {"_mode": self.mode, "_first_synced_at": synced_at, "_last_synced_at": synced_at}
        table = flatten.child_table(spec, listed, system)
        if all_new:
            counts, changed = merge.add_children_of_new_parents(self.con, spec, table, parents)
        else:
            counts, changed = merge.replace_children(self.con, spec, table, parents)
        # A child of a record this run inserted is new with it, whatever this write found.
        parent = spec.parent or ""
        width = len(spec.parent_columns)
        self.tally.wrote_children(spec.name, counts.inserted, (k for k in changed if not self.tally.is_new(parent, k[:width])))
        if spec.name in HISTORY and counts.changed:  # children the merge left as they were have no new version
            hist = HISTORY[spec.name]
            upsert_counts[hist.name] = versions = self._record_child_versions(hist, table, parents, counts, synced_at)
            self.tally.wrote_children(hist.name, versions.inserted)
        return counts

    def _record_child_versions(
        self, hist: TableSpec, rows: pa.Table, parents: pa.Table, merged: MergeCounts, synced_at: datetime
    ) -> MergeCounts:
        """Versions of a batch's child rows. When the merge inserted every row and removed none (a
        first sync, new scorecards), each is a first version (history.open_first_child_versions),
        unless history holds current versions of these parents' children all the same; then, as
        for any other batch, each row is compared with its current version."""
        if merged.inserted == rows.num_rows and not merged.removed:
            opened = history.open_first_child_versions(self.con, hist, rows, parents, synced_at, self.run_id)
            if opened:
                return MergeCounts(inserted=opened)
        return history.record_children(self.con, hist, rows, parents, synced_at, self.run_id)


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK on any exception: one upsert is all or nothing (its tally too)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tally: RunTally) -> None:
        self.con = con
        self._tally = tally.transaction()

    def __enter__(self) -> None:
        self.con.begin()
        self._tally.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.con.commit()
            self._tally.__exit__(None, None, None)
        else:
            self.con.rollback()
            self._tally.__exit__(exc_type, exc, tb)


def _start_history(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Begin missing histories from the current rows (one transaction) and say so once."""
    with _Transaction(con, RunTally()):  # not counted as the run's writes
        started = history.start_missing_from_current_rows(con)
    if started:
        log.warning(
            "history starts now for %s (%d rows): this warehouse was built before history was kept, so each "
            "current row is its first version (valid from when a sync last wrote it); earlier changes were not kept",
            ", ".join(started), sum(started.values()),
        )
    return started


def entity_spec(entity: str) -> TableSpec:
    try:
        return ENTITY_TABLES[entity]
    except KeyError:
        raise UnknownEntityError(f"unknown entity {entity!r}; known: {', '.join(ENTITY_TABLES)}") from None


def fold_by_key(spec: TableSpec, objects: Iterable[Any]) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int]:
    """Objects keyed by their key, repeats shallow-merged in order; plus how many had no key."""
    batch: dict[tuple[Any, ...], dict[str, Any]] = {}
    skipped = 0
    for obj in objects:
        key = flatten.object_key(spec, obj) if isinstance(obj, Mapping) else None
        if key is None:
            skipped += 1
            continue
        batch[key] = {**batch.get(key, {}), **obj}
    return batch, skipped


def coverage_row(run_id: str, coverage: CoverageRecord, default_at: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "list_route": coverage.list_route,
        "entity": coverage.entity,
        "api_total_count": coverage.api_total_count,
        "rows_held": coverage.rows_held,
        "has_more": coverage.has_more,
        "capped": coverage.capped,
        "read_at": coverage.at or default_at,
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
