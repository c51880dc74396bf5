"""Dagster's SQLite storage, minus the per-write set-up cost a CLI sync pays ~500 times.

Dagster's SQLite storages build a new SQLAlchemy engine for every read and write (`NullPool`), and
every connection they close makes SQLite checkpoint the write-ahead log and fsync; with SQLite's
default `synchronous=FULL` each commit fsyncs too. One sync stores ~200 events, each in the run's
shard and most again in the index shard: seconds of CPU and, on a busy disk, many more of wall.

Here the same tables, files and schema are used (the UI, `dagster instance migrate` and plain
Dagster storages read them unchanged), with these differences:
  - one engine per database file, kept open (pooled connection; a few run shards at most);
  - `synchronous=NORMAL` on those connections: in WAL mode a commit no longer fsyncs, a crash of
    the process loses nothing, a power cut at most the last commits (never a corrupt file);
  - an existing database that is stamped with a schema revision is opened without loading
    Dagster's ~180 alembic scripts (Dagster only checks that a revision is there, too); a new
    or unstamped one goes through Dagster's own set-up (create, stamp, migrate data), which
    reads those scripts once per process (alembic_scripts.py), not once per stamp or check;
  - a new run's shard is a copy of an empty shard that Dagster's own set-up made once per Dagster
    version (`.templates/` beside the shards): every run has a shard of its own, and making one
    loaded those alembic scripts and created the tables anew each time (~0.15 s CPU, ~0.4 s wall);
  - an event's row goes in by one insert statement compiled once and run on the DB-API cursor,
    not one built, compiled and run through SQLAlchemy for every event (the same row, the rest of
    storing an event is Dagster's code; see store_event and Prepared), an asset's row likewise;
  - a batch of events (a new run's ~50 planned events, handed over together when the CLI turns
    Dagster's event batching on) is stored in one transaction per file, not one or two per event
    (store_event_batch);
  - the index's completed data migrations and present asset-key columns are remembered, not asked
    of the index again each time Dagster reads asset records (it does once per asset a run derives
    from another, for the data versions).
  - an asset's row in the index (its last materialization) is updated, not first inserted and the
    IntegrityError handled, and a materialization's record there is spelled around the event's
    JSON already made for its row, not serialized again (_store_asset_row); reading asset records
    skips Dagster's back-compat query when every row holds a usable record
    (_get_latest_materialization_records).
Dagster's live run view watches the shard's `.db` file, which a WAL write no longer touches until
a checkpoint: after storing events the shard file's mtime is set, which wakes that watcher.

Configured in dagster.yaml as `storage: custom: {module: jofi_pipeline.dagster_storage,
class: JofiSqliteStorage, config: {base_dir: …}}`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

import dagster._check as check
import sqlalchemy as db
import yaml
from dagster.version import __version__ as DAGSTER_VERSION
from dagster._config import StringSource
from dagster._core.assets import AssetDetails
from dagster._core.definitions.asset_key import AssetKey
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.event_api import EventLogRecord
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData, deserialize_value
from dagster._time import datetime_from_timestamp
from dagster._utils import mkdir_p
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

from jofi_pipeline import alembic_scripts

MODULE = __name__
RUN_SHARD_ENGINES = 8  # run shards kept open besides the index (the UI reads many runs, a sync one)
# An event's row: the columns of `_event_to_row`.
EVENT_COLUMNS = ("run_id", "event", "dagster_event_type", "timestamp", "step_key", "asset_key", "partition")
_EVENT_COLUMN_SET = frozenset(EVENT_COLUMNS)  # compared with every event row's keys


class Prepared:
    """A statement SQLAlchemy compiles once for SQLite, run on the connection's DB-API cursor with
    its parameters converted by the columns' own SQLite conversions, as SQLAlchemy's execute would
    convert them (a timestamp to its text). What it skips is SQLAlchemy's work around the same SQL
    for every execution (a cache key from the statement, parameter processing, a result object):
    ~0.15 ms a row, ~300 rows (every event's row and asset row) a CLI sync. Run inside the
    connection's transaction: SQLAlchemy's commit commits it."""

    def __init__(self, statement, dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self._params = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                        for name in compiled.positiontup]

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> sqlite3.Cursor:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(self.sql, [convert(values[name]) if convert else values[name] for name, convert in self._params])
        return cursor


class Statements:
    """The storage's prepared statements, compiled on first use with the connection's dialect."""

    def __init__(self) -> None:
        self._asset_row_updates: dict[tuple[str, ...], Prepared] = {}
        self._event_insert: Prepared | None = None

    def insert_event(self, conn: Connection, row: Mapping[str, Any]) -> int:
        """The event's row (`_event_to_row`); its id. A row whose columns are not EVENT_COLUMNS
        (a Dagster upgrade added one) fails loudly instead of losing the new column."""
        if row.keys() != _EVENT_COLUMN_SET:
            raise RuntimeError(f"Dagster's event row has columns {sorted(row)}, this storage writes {sorted(EVENT_COLUMNS)}: "
                               "update EVENT_COLUMNS in jofi_pipeline/dagster_storage.py for this Dagster version")
        if self._event_insert is None:
            self._event_insert = Prepared(SqlEventLogStorageTable.insert(), conn.dialect, EVENT_COLUMNS)
        cursor = self._event_insert.execute(conn, row)
        try:
            return check.not_none(cursor.lastrowid)
        finally:
            cursor.close()

    def update_asset_row(self, conn: Connection, asset_key: str, values: Mapping[str, Any]) -> int:
        """Set `values` in the asset's row; how many rows changed (0: it has none yet)."""
        columns = tuple(values)
        update = self._asset_row_updates.get(columns)
        if update is None:
            statement = AssetKeyTable.update().where(AssetKeyTable.c.asset_key == db.bindparam("asset_key_"))
            update = Prepared(statement.values({c: db.bindparam(c) for c in columns}), conn.dialect)
            self._asset_row_updates[columns] = update
        cursor = update.execute(conn, {**values, "asset_key_": asset_key})
        try:
            return cursor.rowcount
        finally:
            cursor.close()


def open_engine(conn_string: str) -> Engine:
    """An engine that keeps one connection open between uses (any thread may take it)."""
    engine = db.create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,  # one kept; more at once (the daemon's threads) are opened and closed as before
        max_overflow=-1,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @db.event.listens_for(engine, "connect")
    def _no_fsync_per_commit(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


class EngineCache:
    """Engines by database file, least recently used dropped beyond `size`; a forked child starts
    afresh (SQLite connections must not cross a fork)."""

    def __init__(self, size: int, keep: Sequence[str] = ()) -> None:
        self._size = size
        self._keep = set(keep)
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            if self._pid != os.getpid():
                for engine in self._engines.values():
                    engine.dispose(close=False)  # the parent's connections stay the parent's
                self._engines.clear()
                self._pid = os.getpid()
            engine = self._engines.get(conn_string)
            if engine is None:
                engine = self._engines[conn_string] = open_engine(conn_string)
                evictable = [k for k in self._engines if k not in self._keep]
                while len(evictable) > self._size:
                    self._engines.pop(evictable.pop(0)).dispose()
            self._engines.move_to_end(conn_string)
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def stamped_revision(conn: Connection) -> str | None:
    """The alembic revision a database is stamped with, None when new or unstamped."""
    try:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except (db.exc.OperationalError, sqlite3.OperationalError):
        return None
    return row[0] if row else None


def table_names(conn: Connection) -> set[str]:
    return {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}


class _BatchConnections(threading.local):
    """The connections (by shard) of the batch this thread is storing, None outside a batch."""

    connections: dict[str, Connection] | None = None


class JofiSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log with kept engines (see the module docstring)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engine_cache = EngineCache(RUN_SHARD_ENGINES, keep=[create_db_conn_string(os.path.abspath(base_dir), INDEX_SHARD_NAME)])
        # Tables and asset-key columns known to exist in the index shard (see has_table).
        self._tables_present: set[str] = set()
        self._asset_key_columns_present: set[str] = set()
        self._secondary_indexes_present: set[str] = set()
        self._batch = _BatchConnections()
        self._statements = Statements()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> JofiSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        with engine.connect() as conn:
            if stamped_revision(conn):
                return  # what Dagster's check concludes too, without loading every migration script
        alembic_scripts.install()
        super()._initdb(engine, for_index_shard)

    def template_path(self) -> str:
        """An empty run shard as Dagster's own set-up makes it, for this Dagster version."""
        return os.path.join(self._base_dir, ".templates", f"run-shard-dagster-{DAGSTER_VERSION}.sqlite")

    def _template(self) -> str | None:
        """The template shard, made on first use; None when it cannot be (then Dagster's set-up runs)."""
        path = self.template_path()
        if os.path.exists(path):
            return path
        made = f"{path}.{os.getpid()}.{threading.get_ident()}"
        try:
            mkdir_p(os.path.dirname(path))
            engine = db.create_engine(f"sqlite:///{made}", poolclass=NullPool)
            alembic_scripts.install()
            try:
                SqliteEventLogStorage._initdb(self, engine)  # Dagster's own: create, WAL, stamp head
            finally:
                engine.dispose()
            if os.path.exists(made + "-wal") and os.path.getsize(made + "-wal"):
                return None  # not checkpointed: a copy would miss what the log holds
            os.replace(made, path)
        except (OSError, db.exc.SQLAlchemyError, sqlite3.Error):
            return None
        finally:
            for leftover in (made, made + "-wal", made + "-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        return path

    def _shard_from_template(self, shard: str) -> None:
        """A new run's shard: a copy of the template (never over an existing file)."""
        target = self.path_for_shard(shard)
        if shard == INDEX_SHARD_NAME or os.path.exists(target):
            return
        template = self._template()
        if template is None:
            return
        copy = os.path.join(os.path.dirname(template), f"{shard}.{os.getpid()}.{threading.get_ident()}.copy")
        try:
            shutil.copyfile(template, copy)
            os.link(copy, target)  # fails, harmlessly, if another process made the shard meanwhile
        except OSError:
            pass
        finally:
            if os.path.exists(copy):
                os.remove(copy)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        batch = self._batch.connections
        if batch is not None and shard in batch:  # a batch being stored by this thread: its transaction
            yield batch[shard]
            return
        with self._db_lock:
            with self._open(shard) as conn, conn.begin():
                yield conn

    @contextmanager
    def _open(self, shard: str) -> Iterator[Connection]:
        """A connection to `shard` (made and set up on first use); the caller holds the storage lock."""
        if shard not in self._initialized_dbs:
            self._shard_from_template(shard)
        engine = self._engine_cache.get(self.conn_string_for_shard(shard))
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn:
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of one run's events (with event batching on, Dagster hands over the planned
        materializations and checks of a new run as one batch: instance.batched_events): each event
        is stored exactly as `store_event` stores it, but in one transaction per shard, so the run's
        shard and the index commit once for the batch instead of once or twice per event. If
        storing any event fails nothing is committed, and Dagster then stores the events one by one
        (only a failure of the index's commit itself, after the shard's, would leave the shard's
        rows to be stored twice)."""
        run_ids = {event.run_id for event in events}
        if len(events) < 2 or len(run_ids) != 1:
            super().store_event_batch(events)
            return
        (run_id,) = run_ids
        with self._db_lock, ExitStack() as stack:
            run_conn = stack.enter_context(self._open(run_id))
            index_conn = stack.enter_context(self._open(INDEX_SHARD_NAME))
            run_tx, index_tx = run_conn.begin(), index_conn.begin()
            self._batch.connections = {run_id: run_conn, INDEX_SHARD_NAME: index_conn}
            try:
                for event in events:
                    self.store_event(event)
            except BaseException:
                run_tx.rollback()
                index_tx.rollback()
                raise
            finally:
                self._batch.connections = None
            run_tx.commit()
            index_tx.commit()
        self._wake_watchers(run_id)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks this of the index shard for every asset event it stores (is the tags table
        there yet?), and reads the asset-key table's columns for every one too: a schema read per
        event, ~20 % of storing one. What exists is remembered: a migration adds tables and columns,
        none removes them; what is missing is asked again (a `dagster instance migrate` meanwhile)."""
        if table_name in self._tables_present:
            return True
        # Called inside index transactions too: a connection of its own, without the storage lock.
        with self._engine_cache.get(self.conn_string_for_shard(INDEX_SHARD_NAME)).connect() as conn:
            present = table_name in table_names(conn)
        if present:
            self._tables_present.add(table_name)
        return present

    def has_asset_key_col(self, column_name: str) -> bool:
        if column_name in self._asset_key_columns_present:
            return True  # no connection opened to be told again (see has_table)
        return super().has_asset_key_col(column_name)

    def has_secondary_index(self, name: str) -> bool:
        """Whether a data migration of the index is complete: Dagster asks it of the index shard
        twice each time it reads asset records (a run reads them once per asset it derives from
        another). A completed migration is remembered (none is ever undone), as Dagster's own
        consolidated SQLite storage does; a missing one is asked again."""
        if name in self._secondary_indexes_present:
            return True
        present = super().has_secondary_index(name)
        if present:
            self._secondary_indexes_present.add(name)
        return present

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        if column_name in self._asset_key_columns_present:
            return True
        present = super()._has_asset_key_col_on_connection(conn, column_name)
        if present:
            self._asset_key_columns_present.add(column_name)
        return present

    def store_event(self, event: EventLogEntry) -> None:
        """Dagster's SQLite `store_event` (the run's shard; asset, check and run-status events also
        in the index shard), with the event's row inserted by one statement compiled once and run
        on the DB-API cursor (`Statements.insert_event`) instead of a statement built, keyed and
        compiled again for every event (`prepare_insert_event`: `insert().values(**row)`) and run
        through SQLAlchemy. The same row (`_event_to_row`) in the same table; what else an event
        stores is Dagster's own code. (`prepare_insert_event` is documented as the place a backend
        may store events its own way; dagster-postgres overrides `store_event` too.) Written from
        Dagster 1.13's `SqliteEventLogStorage.store_event`; a test stores a run's events this way
        and Dagster's way and compares every row of both shards (test_storage.py)."""
        check.inst_param(event, "event", EventLogEntry)
        row = self._event_to_row(event)
        with self.run_connection(event.run_id) as conn:
            self._statements.insert_event(conn, row)
        event_type = event.dagster_event_type if event.is_dagster_event else None
        if event_type in ASSET_EVENTS:
            with self.index_transaction() as conn:  # mirrored in the index shard, with its tags and asset row
                event_id = self._statements.insert_event(conn, row)
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_row(conn, event, event_id, row["event"])
        if event_type in ASSET_CHECK_EVENTS:
            with self.index_connection() as conn:
                event_id = self._statements.insert_event(conn, row)
            self.store_asset_check_event(event, event_id)
        if event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            with self.index_connection() as conn:
                self._statements.insert_event(conn, row)
        if self._batch.connections is None:  # a batch wakes them once it has committed
            self._wake_watchers(event.run_id)

    def _get_latest_materialization_records(self, raw_asset_rows) -> dict:
        """Dagster's, without its fallback query when no row needs it. Reading asset records
        (a run does once per asset it derives from another, for the data versions; the UI for
        every asset page) takes each asset's last materialization from its row, and Dagster then
        also runs a query for the rows that hold none, an old-format one, or one from before
        the asset's last wipe: built and run even when there are no such rows (about a third of
        reading one record). Here rows that hold a usable record are read as Dagster reads them,
        and only the others go through Dagster's own code, query included."""
        results = {}
        others = []
        for row in raw_asset_rows:
            asset_key = AssetKey.from_db_string(row["asset_key"])
            if not asset_key:
                continue
            record = _usable_record(row)
            if record is None:
                others.append(row)
            else:
                results[asset_key] = record
        if others:
            results.update(super()._get_latest_materialization_records(others))
        return results

    def _store_asset_row(self, conn: Connection, event: EventLogEntry, event_id: int, event_json: str) -> None:
        """Dagster's `_store_asset_event` (the asset's row in the index: its last materialization,
        run and event time), the same values written two costs cheaper. A materialization's
        record (`EventLogRecord(storage_id, event)`) is spelled around the event's JSON that was
        just serialized for its row (`event_record_json`), not serialized a second time with all
        its metadata. And the row is updated first, inserted only when the
        asset has none yet: Dagster inserts first, and every event of an asset that has a row
        (all but its very first) raised and handled an IntegrityError before updating. Together
        about a third of storing a materialization."""
        dagster_event = event.dagster_event
        if not (dagster_event and dagster_event.asset_key):
            return
        has_timestamp = self._has_asset_key_index_cols_on_connection(conn)
        if dagster_event.is_step_materialization:
            values = {"last_materialization": event_record_json(event_json, event_id), "last_run_id": event.run_id}
            if has_timestamp:
                values["last_materialization_timestamp"] = datetime_from_timestamp(event.timestamp)
        else:
            values = self._get_asset_entry_values(event, event_id, has_timestamp)
        if not values:
            return
        key = dagster_event.asset_key.to_string()
        if self._statements.update_asset_row(conn, key, values):
            return
        try:
            conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))
        except db.exc.IntegrityError:  # another process made the row meanwhile
            self._statements.update_asset_row(conn, key, values)

    def _wake_watchers(self, run_id: str) -> None:
        """Dagster's live run view watches the shard's .db file for changes; WAL writes leave it
        alone until a checkpoint, so mark it changed."""
        try:
            os.utime(self.path_for_shard(run_id))
        except OSError:
            pass

    def dispose(self) -> None:
        super().dispose()
        self._engine_cache.dispose()


def _usable_record(row) -> EventLogRecord | None:
    """The asset row's last materialization record, when Dagster would take it from the row: a
    whole record (not an old-format materialization) newer than the asset's last wipe."""
    if not row["last_materialization"]:
        return None
    record = deserialize_value(row["last_materialization"], NamedTuple)
    if not isinstance(record, EventLogRecord):
        return None
    details = AssetDetails.from_db_string(row["asset_details"])
    wiped = details.last_wipe_timestamp if details else None
    return record if wiped is None or record.event_log_entry.timestamp > wiped else None


def event_record_json(event_json: str, storage_id: int) -> str:
    """`serialize_value(EventLogRecord(storage_id, event))` given the event's own serialization:
    the record's two fields in the order serdes writes them (tested against serdes itself)."""
    return f'{{"__class__": "EventLogRecord", "event_log_entry": {event_json}, "storage_id": {int(storage_id)}}}'


class KeptEngineStorage:
    """For Dagster's one-file SQLite storages (runs, schedules): a kept engine, and an existing
    database stamped with a revision (and holding `needs`) opened as is; anything else goes
    through the Dagster class's own `from_local` set-up. Listed before that class."""

    DB_NAME = ""
    NEEDS: frozenset[str] = frozenset()

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        self._engine_cache = EngineCache(1)
        super().__init__(conn_string, inst_data)  # type: ignore[call-arg]

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None):
        mkdir_p(base_dir)
        if os.path.exists(os.path.join(os.path.abspath(base_dir), f"{cls.DB_NAME}.db")):
            storage = cls(create_db_conn_string(base_dir, cls.DB_NAME), inst_data)
            with storage.connect() as conn:
                if stamped_revision(conn) and cls.NEEDS <= table_names(conn):
                    return storage
            storage.dispose()
        alembic_scripts.install()
        return super().from_local(base_dir, inst_data)  # type: ignore[misc]  new or unstamped: Dagster's own set-up

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine_cache.get(self._conn_string).connect() as conn, conn.begin():  # type: ignore[attr-defined]
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engine_cache.dispose()


class JofiSqliteRunStorage(KeptEngineStorage, SqliteRunStorage):
    """Dagster's SQLite run storage (history/runs.db) with a kept engine."""

    DB_NAME = "runs"
    NEEDS = frozenset({"instance_info"})  # Dagster's set-up adds it when missing


class JofiSqliteScheduleStorage(KeptEngineStorage, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (schedules/schedules.db) with a kept engine."""

    DB_NAME = "schedules"


SETUP_LOCK = ".setup.lock"


@contextmanager
def one_at_a_time(base_dir: str) -> Iterator[None]:
    """Within: no other JofiSqliteStorage (another process, or another thread here) is being opened on
    this storage folder. Processes that have it open go on using its databases meanwhile.

    Dagster sets a new database up (create the tables, stamp, migrate data) without a lock: two
    commands opening a new instance at once (`sync --mode live & sync --mode test` on first use, a
    CLI sync beside a schedule's first run) both created the same tables, and one failed with
    "table runs already exists" or an alembic CommandError. Opening an instance already set up holds
    the lock for milliseconds. Where the lock cannot be had (a read-only folder, a file system
    without `flock`), the storage opens without it, as before. The descriptor is not inherited by
    a fork that a thread makes while another holds the lock: the project forks only single-threaded.
    """
    path = os.path.join(base_dir, SETUP_LOCK)
    try:
        mkdir_p(base_dir)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)  # flock needs no write access
    except OSError:
        fd = None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed
            except OSError:
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)


class JofiSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite` with the storages above: same folder layout (history/, schedules/)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        with one_at_a_time(base_dir):
            self._run_storage = JofiSqliteRunStorage.from_local(_runs_directory(base_dir))
            self._event_log_storage = JofiSqliteEventLogStorage(_event_logs_directory(base_dir))
            self._schedule_storage = JofiSqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> JofiSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

    def _data(self, class_name: str, base_dir: str) -> ConfigurableClassData:
        return ConfigurableClassData(MODULE, class_name, yaml.dump({"base_dir": base_dir}, default_flow_style=False))

    @property
    def event_storage_data(self) -> ConfigurableClassData:
        return self._data("JofiSqliteEventLogStorage", _event_logs_directory(self.base_dir))

    @property
    def run_storage_data(self) -> ConfigurableClassData:
        return self._data("JofiSqliteRunStorage", _runs_directory(self.base_dir))

    @property
    def schedule_storage_data(self) -> ConfigurableClassData:
        return self._data("JofiSqliteScheduleStorage", _schedule_directory(self.base_dir))


def storage_config(base_dir: str) -> dict:
    """The dagster.yaml `storage:` entry for this storage in `base_dir` (the project's file spells it out)."""
    return {"storage": {"custom": {"module": MODULE, "class": JofiSqliteStorage.__name__, "config": {"base_dir": base_dir}}}}
