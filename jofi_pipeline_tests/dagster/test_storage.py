"""The project's SQLite instance storage (jofi_pipeline/dagster_storage.py): Dagster's own files and
schema with kept connections. Real instances in temp dirs: what it writes, plain Dagster (and
another process) reads; new, old and unstamped databases get what Dagster gives them; the UI's
live run view still hears about new events.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from alembic.script import ScriptDirectory
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION

from jofi_pipeline import dagster_storage
from jofi_pipeline.dagster_storage import (
    RUN_SHARD_ENGINES,
    JofiSqliteEventLogStorage,
    JofiSqliteRunStorage,
    JofiSqliteScheduleStorage,
    storage_config,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__))
HEAD = SCRIPTS.as_revision_number("head")
DATABASES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


def open_at(home: Path, plain: bool = False) -> dg.DagsterInstance:
    """An instance on `home`: ours, or (plain) Dagster's own `storage: sqlite` on the same folder."""
    configure(home, plain)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def configure(home: Path, plain: bool = False) -> None:
    """`home`'s dagster.yaml (see open_at); nothing else is made until an instance is opened."""
    config = {"storage": {"sqlite": {"base_dir": str(home)}}} if plain else storage_config(str(home))
    no_log_files = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}  # no `tail` process
    (home / "dagster.yaml").write_text(yaml.safe_dump({**config, "compute_logs": no_log_files, "telemetry": {"enabled": False}}))


@dg.asset
def numbers() -> int:
    return 3


@dg.asset_check(asset=numbers)
def positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"seen": 3})


def materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([numbers, positive], instance=instance, tags={"jofi/mode": "test"})
    assert result.success
    return result.run_id


def stamped(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_new_instance_has_dagsters_layout_stamped_at_head(tmp_path):
    with open_at(tmp_path) as instance:
        assert isinstance(instance.run_storage, JofiSqliteRunStorage)
        assert isinstance(instance.event_log_storage, JofiSqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, JofiSqliteScheduleStorage)
        run_id = materialize(instance)
        assert instance.run_storage.alembic_version() == (HEAD, HEAD)
    for database in DATABASES:
        assert stamped(tmp_path / database) == HEAD, database
    assert stamped(tmp_path / "history" / "runs" / f"{run_id}.db") == HEAD


def test_a_process_reads_dagsters_migration_scripts_once_however_many_instances_it_sets_up(tmp_path, monkeypatch):
    """alembic_scripts.py: the second new instance is created and stamped at head like the first,
    without loading Dagster's migration scripts again."""
    loads = []
    load = ScriptDirectory._load_revisions

    def counted(self):
        loads.append(self.dir)
        yield from load(self)

    monkeypatch.setattr(ScriptDirectory, "_load_revisions", counted)
    for name in ("first", "second"):
        loads.clear()
        (tmp_path / name).mkdir()
        with open_at(tmp_path / name) as instance:
            run_id = materialize(instance)
        for database in (*DATABASES, f"history/runs/{run_id}.db"):
            assert stamped(tmp_path / name / database) == HEAD, database
    assert loads == []


def test_what_it_writes_plain_dagster_reads_and_the_other_way_round(tmp_path):
    with open_at(tmp_path) as instance:
        first = materialize(instance)
    with open_at(tmp_path, plain=True) as plain:
        assert plain.get_run_by_id(first).tags["jofi/mode"] == "test"
        events = [e.dagster_event_type for e in plain.all_logs(first)]
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in events and dg.DagsterEventType.RUN_SUCCESS in events
        assert plain.get_latest_materialization_event(numbers.key).run_id == first
        second = materialize(plain)
    with open_at(tmp_path) as instance:
        assert {r.run_id for r in instance.get_runs()} == {first, second}
        assert instance.get_latest_materialization_event(numbers.key).run_id == second
        checks = instance.event_log_storage.get_asset_check_execution_history(positive.check_key, limit=5)
        assert [c.run_id for c in checks] == [second, first]
        assert [e.dagster_event_type for e in instance.all_logs(first)] == events


@pytest.mark.e2e  # another process
def test_another_process_reads_the_runs_and_events(tmp_path):
    with open_at(tmp_path) as instance:
        run_id = materialize(instance)
        expected = len(instance.all_logs(run_id))
    code = (
        "import json, sys\n"
        "import dagster as dg\n"
        "from dagster._core.instance.ref import InstanceRef\n"
        "with dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1])) as i:\n"
        "    print(json.dumps({r.run_id: len(i.all_logs(r.run_id)) for r in i.get_runs()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {run_id: expected}


def test_an_old_revision_is_reported_like_dagster_does_and_migrates(tmp_path):
    """Dagster opens an out-of-date database as it is and says so (`dagster instance migrate`
    brings it to head); so does this storage: no silent stamping, migration still works."""
    with open_at(tmp_path, plain=True) as plain:
        materialize(plain)
    older = SCRIPTS.get_revision(HEAD).down_revision
    assert isinstance(older, str)
    for database in DATABASES:
        with sqlite3.connect(tmp_path / database) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (older,))
    with open_at(tmp_path) as instance:
        assert instance.run_storage.alembic_version() == (older, HEAD)
        assert instance.event_log_storage.alembic_version() == (older, HEAD)
        assert stamped(tmp_path / "history/runs.db") == older  # opening changed nothing
        instance.upgrade()
    for database in DATABASES:
        assert stamped(tmp_path / database) == HEAD, database
    with open_at(tmp_path) as instance:
        assert len(instance.get_runs()) == 1


def test_an_unstamped_database_gets_dagsters_own_set_up(tmp_path):
    """Tables without an alembic stamp (databases made by older SQLAlchemy 2 set-ups): this
    storage leaves them to Dagster's own code, so they end up stamped as plain Dagster stamps them."""
    made = tmp_path / "made"
    made.mkdir()
    with open_at(made, plain=True) as plain:
        materialize(plain)
    for database in DATABASES:
        with sqlite3.connect(made / database) as conn:
            conn.execute("DROP TABLE alembic_version")
    ours, dagsters = tmp_path / "ours", tmp_path / "dagsters"
    shutil.copytree(made, ours)
    shutil.copytree(made, dagsters)
    for home, plain in ((ours, False), (dagsters, True)):
        with open_at(home, plain=plain) as instance:
            assert len(instance.get_runs()) == 1
            materialize(instance)
    revisions = {database: stamped(ours / database) for database in DATABASES}
    assert revisions == {database: stamped(dagsters / database) for database in DATABASES}
    assert revisions["history/runs.db"] == LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION


def test_the_live_run_view_hears_about_new_events(tmp_path):
    """The UI watches a run's shard file; events written through kept connections sit in the WAL,
    so the storage marks the file changed. Watched by plain Dagster, as `dagster dev` would."""
    with open_at(tmp_path) as instance:
        first = materialize(instance)
        run = instance.get_run_by_id(first)
        with open_at(tmp_path, plain=True) as watcher:
            heard: list[str] = []
            got_it = threading.Event()

            def callback(entry, _cursor):
                message = entry.dagster_event.message if entry.dagster_event else entry.user_message
                heard.append(message)
                if message == "late news":
                    got_it.set()

            watcher.watch_event_logs(first, None, callback)
            try:
                instance.report_engine_event("late news", run)
                assert got_it.wait(20), f"the watcher heard only {heard[-3:]}"
            finally:
                watcher.end_watch_event_logs(first, callback)


def test_commits_skip_fsync_and_only_a_few_run_shards_stay_open(tmp_path, monkeypatch):
    assert RUN_SHARD_ENGINES > 2  # the project's bound; the test holds the storage to 2 (4 runs, not 10)
    monkeypatch.setattr(dagster_storage, "RUN_SHARD_ENGINES", 2)
    with open_at(tmp_path) as instance:
        storage = instance.event_log_storage
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        runs = [materialize(instance) for _ in range(2 + 2)]
        assert len(storage._engine_cache._engines) == 2 + 1  # + the index
        assert all(len(instance.all_logs(run_id)) > 5 for run_id in runs)  # evicted shards reopen


def test_many_threads_at_once_neither_wait_nor_fail(tmp_path):
    """The daemon's threads (sensors, schedules, run queue, monitoring) use one instance at once:
    beyond the one kept, connections are opened as Dagster's own storage opens them, so twelve
    threads can each hold one at the same moment (a capped pool would make them wait)."""
    with open_at(tmp_path) as instance:
        run_id = materialize(instance)
        errors: list[BaseException] = []
        all_in = threading.Barrier(12, timeout=20)

        def reader(storage) -> None:
            try:
                with storage.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                    all_in.wait()  # every thread holds a connection now
                assert instance.get_run_by_id(run_id) is not None and instance.all_logs(run_id)
            except BaseException as exc:  # noqa: BLE001  reported below
                errors.append(exc)

        for storage in (instance.run_storage, instance.schedule_storage):
            all_in.reset()
            threads = [threading.Thread(target=reader, args=(storage,)) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not errors and not any(t.is_alive() for t in threads), errors[:1]


def test_the_project_instance_and_the_tests_instance_use_it():
    project = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert project["storage"] == storage_config(".dagster_home")["storage"]
    home = Path(os.environ["DAGSTER_HOME"])
    assert yaml.safe_load((home / "dagster.yaml").read_text())["storage"] == storage_config(str(home))["storage"]


def shard_schema(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())


def test_a_new_runs_shard_is_a_copy_of_dagsters_own_empty_shard_without_loading_alembic(tmp_path, monkeypatch):
    from dagster._core.storage.event_log.sqlite import sqlite_event_log

    for home in ("ours", "plain"):
        (tmp_path / home).mkdir()
    with open_at(tmp_path / "ours") as instance:
        first = materialize(instance)  # makes the template with Dagster's own set-up, once

        def no_alembic(*_args, **_kwargs):
            raise AssertionError("a new run shard loaded alembic's scripts")

        monkeypatch.setattr(sqlite_event_log, "get_alembic_config", no_alembic)
        second = materialize(instance)
        assert instance.get_run_by_id(second).is_success
        assert [e.dagster_event_type for e in instance.all_logs(second) if e.is_dagster_event][-1] == dg.DagsterEventType.RUN_SUCCESS
        template = Path(instance.event_log_storage.template_path())
        assert template.exists() and not template.with_name(template.name + "-wal").exists()
    monkeypatch.undo()
    with open_at(tmp_path / "plain", plain=True) as instance:
        plain = materialize(instance)
    shards = tmp_path / "ours" / "history" / "runs"
    dagsters = tmp_path / "plain" / "history" / "runs" / f"{plain}.db"
    assert shard_schema(shards / f"{second}.db") == shard_schema(dagsters) == shard_schema(shards / f"{first}.db")
    assert stamped(shards / f"{second}.db") == stamped(dagsters) == HEAD
    # Not a shard: nothing lists the template as a run.
    with open_at(tmp_path / "ours") as instance:
        assert set(instance.event_log_storage.get_all_run_ids()) == {first, second}


def test_an_asset_event_after_the_first_stores_without_reading_the_schema_again(tmp_path):
    """Dagster asks for every asset event whether the index shard has the tags table and the
    asset-key columns (a schema read each, ~20 % of storing the event); what exists is remembered."""
    import sqlalchemy

    instance = open_at(tmp_path)
    storage = instance.event_log_storage
    assert isinstance(storage, JofiSqliteEventLogStorage)
    index = storage._engine_cache.get(storage.conn_string_for_shard("index"))
    schema_reads: list[str] = []

    @sqlalchemy.event.listens_for(index, "before_cursor_execute")
    def spy(_conn, _cursor, statement, *_args) -> None:
        if "sqlite_master" in statement or "PRAGMA" in statement.upper():
            schema_reads.append(statement)

    materialization = dg.AssetMaterialization("numbers", metadata={"rows": 3}, tags={"dagster/data_version": "1"})
    instance.report_runless_asset_event(materialization)
    assert schema_reads  # the first event: asked once
    schema_reads.clear()
    instance.report_runless_asset_event(materialization)
    instance.report_runless_asset_event(materialization)
    assert schema_reads == []
    assert len(instance.fetch_materializations(dg.AssetKey("numbers"), limit=10).records) == 3
    # What is missing is asked again: a table made later (a migration meanwhile) is found.
    assert not storage.has_table("made_later")
    with sqlite3.connect(tmp_path / "history" / "runs" / "index.db") as con:
        con.execute("CREATE TABLE made_later (id INTEGER)")
    assert storage.has_table("made_later")
    instance.dispose()


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["live", "test"]))
def per_mode_numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 2, "preview": dg.MetadataValue.md("| a |\n|---|\n| 1 |")})


WRITING_TIME = {"create_timestamp", "update_timestamp", "migration_completed"}  # the clock when a row was written


def database_rows(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows, without the columns that hold the time of writing."""
    with sqlite3.connect(path) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for table in tables:
            columns = [c for (_, c, *_rest) in con.execute(f"PRAGMA table_info({table})") if c not in WRITING_TIME]
            quoted = ', '.join(f'"{c}"' for c in columns)
            out[table] = sorted(con.execute(f'SELECT {quoted} FROM "{table}"').fetchall(), key=repr)
        return out


def test_each_event_is_stored_as_plain_dagster_stores_it_by_one_statement_built_once(tmp_path, monkeypatch):
    """An event's row is inserted by one statement built once (not a statement built and compiled
    for every event by `prepare_insert_event`), and both shards end up holding exactly the rows
    that plain Dagster's storage leaves for the same events: run status, steps, outputs, logs,
    materializations (partitioned or not) and their planned events, check evaluations."""
    (tmp_path / "source").mkdir()
    with open_at(tmp_path / "source") as source:
        runs = [materialize(source)]
        partitioned = dg.materialize([per_mode_numbers], instance=source, partition_key="live")
        assert partitioned.success
        runs.append(partitioned.run_id)
        events = [event for run_id in runs for event in source.all_logs(run_id)]
    kinds = {e.dagster_event_type for e in events}
    assert {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
            dg.DagsterEventType.STEP_OUTPUT, dg.DagsterEventType.RUN_SUCCESS} <= kinds

    def built_for_each_event(*_args, **_kwargs):
        raise AssertionError("a statement was built for one event")

    monkeypatch.setattr(JofiSqliteEventLogStorage, "prepare_insert_event", built_for_each_event)
    for name in ("ours", "plain"):
        (tmp_path / name).mkdir()
        with open_at(tmp_path / name, plain=name == "plain") as instance:
            for event in events:
                instance.event_log_storage.store_event(event)
    for database in ["history/runs/index.db", *(f"history/runs/{run_id}.db" for run_id in runs)]:
        ours, plain = database_rows(tmp_path / "ours" / database), database_rows(tmp_path / "plain" / database)
        assert ours.keys() == plain.keys(), database
        for table in ours:
            assert ours[table] == plain[table], f"{database}: {table}"


def test_event_rows_and_asset_rows_are_written_on_the_cursor_not_through_sqlalchemys_execute(tmp_path):
    """SQLAlchemy's execute costs ~0.15 ms a statement around the SQL itself (a cache key, a result
    object): the event rows (run shard and index) and asset rows a run writes are run on the
    DB-API cursor by statements compiled once (dagster_storage.Prepared); what else Dagster writes
    (tags, check executions) still goes through SQLAlchemy. The rows are Dagster's: see
    test_each_event_is_stored_as_plain_dagster_stores_it_by_one_statement_built_once."""
    import sqlalchemy

    (tmp_path / "source").mkdir()
    with open_at(tmp_path / "source") as source:
        runs = [materialize(source), materialize(source)]  # the second updates the asset's row
        logs = [source.all_logs(run_id) for run_id in runs]
    events = [event for log in logs for event in log]
    (tmp_path / "ours").mkdir()
    with open_at(tmp_path / "ours") as instance:
        through_sqlalchemy: list[str] = []

        def seen(_conn, _cursor, statement, *_args) -> None:
            through_sqlalchemy.append(" ".join(statement.split()))

        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", seen)
        try:
            for event in events:
                instance.event_log_storage.store_event(event)
        finally:
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", seen)
        assert [len(instance.all_logs(run_id)) for run_id in runs] == [len(log) for log in logs]
        assert through_sqlalchemy  # the tags of a materialization, the check's execution
    assert not [s for s in through_sqlalchemy if s.startswith(("INSERT INTO event_logs", "UPDATE asset_keys"))]


@dg.asset_check(asset=per_mode_numbers)
def per_mode_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@contextmanager
def commits_by_file() -> Iterator[list[str]]:
    """The database file of every commit made meanwhile (any engine of this process)."""
    import sqlalchemy

    committed: list[str] = []

    def commit(conn) -> None:
        committed.append(Path(conn.engine.url.database).name)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", commit)
    try:
        yield committed
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", commit)


def test_a_batch_of_events_is_stored_as_dagster_stores_them_one_by_one_with_one_commit_per_file(tmp_path):
    """`store_event_batch` (Dagster hands it the events it emits together, e.g. a run's planned
    events): each run's batch commits once in its shard and once in the index, and both shards end
    up holding exactly the rows plain Dagster's storage leaves storing the same events one by one."""
    (tmp_path / "source").mkdir()
    with open_at(tmp_path / "source") as source:
        runs = [materialize(source)]
        partitioned = dg.materialize([per_mode_numbers, per_mode_positive], instance=source, partition_key="live")
        assert partitioned.success
        runs.append(partitioned.run_id)
        batches = [source.all_logs(run_id) for run_id in runs]
    for name in ("ours", "plain"):
        (tmp_path / name).mkdir()
        with open_at(tmp_path / name, plain=name == "plain") as instance:
            for events in batches:
                if name == "plain":
                    for event in events:
                        instance.event_log_storage.store_event(event)
                    continue
                with commits_by_file() as committed:
                    instance.event_log_storage.store_event_batch(events)
                made_once = [c for c in committed if c.startswith("run-shard-dagster-")]  # the template shard
                assert sorted(c for c in committed if c not in made_once) == sorted([f"{events[0].run_id}.db", "index.db"])
    for database in ["history/runs/index.db", *(f"history/runs/{run_id}.db" for run_id in runs)]:
        ours, plain = database_rows(tmp_path / "ours" / database), database_rows(tmp_path / "plain" / database)
        assert ours.keys() == plain.keys(), database
        for table in ours:
            assert ours[table] == plain[table], f"{database}: {table}"


def test_a_batch_that_fails_part_way_leaves_nothing_stored(tmp_path, monkeypatch):
    """Dagster stores the events of a batch one by one when the batch fails: so a failed batch must
    have stored none of them (else those would be stored twice)."""
    (tmp_path / "source").mkdir()
    with open_at(tmp_path / "source") as source:
        events = source.all_logs(materialize(source))
    kinds = [e.dagster_event_type for e in events]
    assert kinds.index(dg.DagsterEventType.ASSET_MATERIALIZATION) < kinds.index(dg.DagsterEventType.ASSET_CHECK_EVALUATION)

    def disk_full(self, event, event_id):
        if event.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            raise OSError("disk full")
        return real_check_event(self, event, event_id)

    real_check_event = JofiSqliteEventLogStorage.store_asset_check_event
    (tmp_path / "ours").mkdir()
    with open_at(tmp_path / "ours") as instance:
        storage = instance.event_log_storage
        monkeypatch.setattr(JofiSqliteEventLogStorage, "store_asset_check_event", disk_full)
        with pytest.raises(OSError, match="disk full"):
            storage.store_event_batch(events)
        assert instance.all_logs(events[0].run_id) == []
        assert storage.get_latest_materialization_events([numbers.key]).get(numbers.key) is None
        monkeypatch.undo()
        for event in events:  # what Dagster does next; connections are the storage's own again
            storage.store_event(event)
        assert len(instance.all_logs(events[0].run_id)) == len(events)


def test_the_cli_writes_a_runs_planned_events_in_one_batch(tmp_path, monkeypatch):
    """A run started by `jofi-pipeline sync` (runs.run_job_here) has Dagster hand its planned
    materializations and checks to the storage as one batch; the environment is left as it was."""
    from jofi_pipeline import runs
    from jofi_pipeline.instance import EVENT_BATCH_SIZE_ENV

    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    job = dg.Definitions(
        assets=[per_mode_numbers], asset_checks=[per_mode_positive],
        jobs=[dg.define_asset_job("numbers_job", selection=[per_mode_numbers],
                                   executor_def=dg.in_process_executor)],
    ).resolve_job_def("numbers_job")
    batches: list[list[dg.DagsterEventType]] = []
    real_batch = JofiSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append([e.dagster_event_type for e in events])
        return real_batch(self, events)

    monkeypatch.setattr(JofiSqliteEventLogStorage, "store_event_batch", spy)
    with open_at(tmp_path) as instance:
        result = runs.run_job_here(job, instance, "live", {})
        assert result.success
        stored = [e.dagster_event_type for e in instance.all_logs(result.dagster_run.run_id)]
    planned = [dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
    assert [sorted(kinds) for kinds in batches if len(kinds) > 1] == [sorted(planned)]
    assert sorted(k for k in stored if k in planned) == sorted(planned)
    assert EVENT_BATCH_SIZE_ENV not in os.environ


def test_reading_asset_records_asks_the_index_for_completed_migrations_once(tmp_path):
    """Dagster asks whether the index's data migrations are complete, and whether the asset-key
    table has its newer columns, each time it reads asset records (a run reads them once per
    asset derived from another): each answer that is yes is remembered, so a read opens the index
    only for the records. A migration not done yet is asked again."""
    import sqlalchemy

    instance = open_at(tmp_path)
    materialize(instance)
    storage = instance.event_log_storage
    index = storage._engine_cache.get(storage.conn_string_for_shard("index"))
    statements: list[str] = []
    connections: list[int] = []
    sqlalchemy.event.listen(index, "before_cursor_execute", lambda _c, _cur, statement, *_a: statements.append(statement))
    sqlalchemy.event.listen(index, "engine_connect", lambda conn: connections.append(1))
    assert storage.get_asset_records([numbers.key])
    statements.clear()
    connections.clear()
    for _ in range(3):
        assert storage.get_asset_records([numbers.key])[0].asset_entry.last_materialization is not None
    assert not [s for s in statements if "secondary_indexes" in s]
    assert len(connections) == len(statements) == 3  # the asset row, no (empty) back-compat read
    assert not storage.has_secondary_index("made_later")
    with sqlite3.connect(tmp_path / "history" / "runs" / "index.db") as con:
        con.execute("INSERT INTO secondary_indexes (name, migration_completed) VALUES ('made_later', CURRENT_TIMESTAMP)")
    assert storage.has_secondary_index("made_later")
    instance.dispose()


def test_an_assets_row_is_updated_without_a_failed_insert_and_its_record_serialized_once(tmp_path, monkeypatch):
    """Every asset event after an asset's first updates the asset's row in the index; Dagster
    inserted first and handled the IntegrityError every time. A materialization's record in that
    row is spelled around the event's JSON already made for its event row, not serialized again
    with all its metadata; it is exactly what serdes writes for the record (and the rows of both
    shards are plain Dagster's: test_each_event_is_stored_as_plain_dagster_stores_it...)."""
    from dagster._core.event_api import EventLogRecord
    from dagster._core.storage.event_log import sql_event_log
    from dagster._serdes import serialize_value

    instance = open_at(tmp_path)
    materialize(instance)
    storage = instance.event_log_storage
    index = storage._engine_cache.get(storage.conn_string_for_shard("index"))
    statements: list[str] = []
    with index.connect() as conn:  # the index's kept connection: every statement run on it, by SQLAlchemy or not
        conn.connection.driver_connection.set_trace_callback(statements.append)
    serialized: list[object] = []

    def counted(value, *args, **kwargs):
        serialized.append(value)
        return serialize_value(value, *args, **kwargs)

    monkeypatch.setattr(sql_event_log, "serialize_value", counted)
    event = instance.fetch_materializations(numbers.key, limit=1).records[0].event_log_entry
    storage.store_event(event)
    assert [s for s in statements if "asset_keys" in s and s.lstrip().upper().startswith("UPDATE")]
    assert not [s for s in statements if "INSERT INTO asset_keys" in s]
    assert serialized == [event]  # the event's row only
    record = storage.get_asset_records([numbers.key])[0].asset_entry.last_materialization_record
    assert record.event_log_entry == event
    assert dagster_storage.event_record_json(serialize_value(event), 7) == serialize_value(
        EventLogRecord(storage_id=7, event_log_entry=event))
    instance.dispose()


def test_asset_records_without_a_usable_record_in_their_row_are_read_by_dagsters_own_code(tmp_path):
    """The records taken from asset rows are what Dagster's code returns for the same rows: a row
    holding the last materialization's record, one holding none, one whose record predates the
    asset's last wipe, one holding an old-format materialization (the last three: Dagster's
    own back-compat read of the event log)."""
    from dagster._core.assets import AssetDetails
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._serdes import serialize_value

    instance = open_at(tmp_path)
    materialize(instance)
    storage = instance.event_log_storage
    (row,) = storage._fetch_asset_rows(asset_keys=[numbers.key])
    record = storage._get_latest_materialization_records([row])[numbers.key]
    assert record is not None and record.event_log_entry.asset_materialization.asset_key == numbers.key
    wiped_after = serialize_value(AssetDetails(last_wipe_timestamp=record.event_log_entry.timestamp + 1))
    variants = [
        row,
        {**row, "last_materialization": None},
        {**row, "asset_details": wiped_after},
        {**row, "last_materialization": serialize_value(record.event_log_entry.asset_materialization)},
    ]
    for variant in variants:
        assert storage._get_latest_materialization_records([variant]) == \
            SqliteEventLogStorage._get_latest_materialization_records(storage, [variant])
    instance.dispose()


def test_an_event_row_with_a_column_the_storage_does_not_know_fails_loudly():
    """A Dagster upgrade that adds a column to `_event_to_row` must not lose it silently."""
    from jofi_pipeline.dagster_storage import EVENT_COLUMNS, Statements

    row = {name: None for name in EVENT_COLUMNS} | {"new_column": 1}
    with pytest.raises(RuntimeError, match="new_column"):
        Statements().insert_event(None, row)


def _open_new_instance_at_once(home: str, barrier, errors) -> None:
    """A forked process: open the instance on `home` when all are ready, read its runs."""
    try:
        barrier.wait(timeout=60)
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(home)) as instance:
            instance.get_runs()
    except BaseException as exc:  # noqa: BLE001  reported to the test, whatever it is
        errors.put(f"{type(exc).__name__}: {str(exc)[:300]}")
        errors.close()
        errors.join_thread()  # the message is in the pipe before the process ends
        os._exit(1)
    os._exit(0)


@pytest.mark.e2e  # other processes
def test_processes_opening_a_new_instance_at_once_all_open_it(tmp_path):
    """Two commands started together on a new Dagster home (`sync --mode live & sync --mode test` on
    first use) each set its databases up; without the set-up lock most rounds of 4 processes failed
    with "table runs already exists" or alembic's "expected to match one row" (measured)."""
    import multiprocessing
    import queue
    import time

    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        home = tmp_path / f"home-{round_}"
        home.mkdir()
        configure(home)  # its storage is made below, by the 4 at once
        barrier, errors = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_open_new_instance_at_once, args=(str(home), barrier, errors), daemon=True)
                     for _ in range(4)]
        for process in processes:
            process.start()
        deadline = time.monotonic() + 120  # one for all: a hung process fails the test, never the worker
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        hung = [process.pid for process in processes if process.is_alive()]
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        said = []
        while True:
            try:
                said.append(errors.get(timeout=1))
            except queue.Empty:
                break
        assert not hung and [process.exitcode for process in processes] == [0] * 4, (hung, [p.exitcode for p in processes], said)
        with open_at(home) as instance:  # set up once, whole: stamped at Dagster's head
            assert instance.get_runs() == []
        for name in DATABASES:
            with sqlite3.connect(home / name) as con:
                assert con.execute("SELECT version_num FROM alembic_version").fetchall(), name
