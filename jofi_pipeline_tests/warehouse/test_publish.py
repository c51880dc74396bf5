"""Publish: a self-contained, commented DuckDB file and Parquet tree, swapped in atomically."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline import settings
from jofi_pipeline.warehouse import PublishError, SyncRunRecord, WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse import integrity, publish_staging
from jofi_pipeline.warehouse import store as store_module
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS
from jofi_pipeline_tests.folder_copies import copy_of
from jofi_pipeline_tests.warehouse.conftest import T0, T1


def fill(run, n_teams: int = 1) -> None:
    run.upsert("teams", [docs.team(id=i) for i in range(1, n_teams + 1)], T0)
    run.upsert("test_takers", [docs.test_taker()], T0)
    run.upsert("scorecards", [docs.scorecard()], T0)
    run.upsert("job_fit_reports", [docs.job_fit_report()], T0)
    run.upsert("career_navigation_profiles", [docs.career_navigation_profile()], T0)


def filled(folder: Path, n_teams: int = 1, *, users: bool = False, published: bool = False) -> WarehouseStore:
    """The live store in `folder` after a run r1 at T0 that filled it (users 501-510 too, if asked)
    and published it, if asked: a copy of the folder this process made first (folder_copies.py),
    for a test whose subject is what comes after."""

    def make(data: Path) -> None:
        with WarehouseStore(data, "live").open_run("r1", T0) as run:
            fill(run, n_teams)
            if users:
                run.upsert("users", [docs.user(id=i) for i in range(501, 511)], T0)
            if published:
                run.publish()

    copy_of(f"filled-{n_teams}-teams{'-users' if users else ''}{'-published' if published else ''}", make, folder)
    return WarehouseStore(folder, "live")


def digest_tree(path: Path) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            out[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def published_state(store: WarehouseStore) -> tuple:
    return (
        hashlib.sha256(store.published_db_path.read_bytes()).hexdigest(),
        os.readlink(store.parquet_dir),
        digest_tree(store.parquet_dir.resolve()),
        sorted(p.name for p in store.mode_dir.iterdir()),
    )


def test_publish_creates_readable_duckdb_with_all_tables_views_and_comments(store):
    with store.open_run("r1", T0) as run:
        fill(run)
        result = run.publish()
        work_counts = {t: run.query(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    assert result.row_counts == work_counts
    assert work_counts["scorecard_scores"] == 4 and work_counts["job_fit_occupations"] == 3
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    try:
        for table, count in work_counts.items():
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count
        assert con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'jofi'").fetchone()[0].startswith("v1.4.0")
        table_comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
        assert set(table_comments) == set(TABLES) and all(table_comments.values())
        uncommented = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND database_name = 'jofi' "
            "AND (comment IS NULL OR comment = '') AND table_name IN (SELECT table_name FROM duckdb_tables())").fetchall()
        assert uncommented == []
        view_comments = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        assert set(view_comments) == {v.name for v in VIEWS} and all(view_comments.values())
        assert con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'test_takers' AND column_name = 'id'").fetchone() == ("Test taker ID.",)
        assert con.execute("SELECT id, typeof(id) FROM career_navigation_profiles").fetchall() == [("CNP1234567890", "VARCHAR")]
        assert con.execute("SELECT typeof(id) FROM test_takers").fetchone() == ("BIGINT",)
    finally:
        con.close()
    assert not list(store.mode_dir.glob(".jofi.duckdb.publishing-*"))
    assert not Path(f"{store.published_db_path}.wal").exists()


def test_parquet_matches_tables_and_is_readable(store):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=3)
        result = run.publish()
    assert store.parquet_dir.is_symlink() and store.parquet_dir.resolve() == result.parquet_version_dir.resolve()
    with duckdb.connect() as con:  # one reader for every table (a DuckDB instance costs ~35 ms of CPU)
        for table, count in result.row_counts.items():
            table_dir = store.parquet_dir / table
            assert ds.dataset(table_dir, format="parquet").to_table().num_rows == count
            assert con.execute(f"SELECT count(*) FROM read_parquet('{table_dir}/*.parquet')").fetchone()[0] == count
    tt = ds.dataset(store.parquet_dir / "test_takers", format="parquet").to_table()
    assert tt.column("id").to_pylist() == [docs.BIG_TEST_TAKER_ID]
    assert str(tt.schema.field("_last_synced_at").type).startswith("timestamp[us, tz=")


def test_failure_before_rename_leaves_published_copy_untouched(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        before = published_state(store)
        run.upsert("teams", [docs.team(id=77)], T1)

        # StagedVersion: the new version's folder, made before the gate (a full or read-only disk);
        # copy_and_flush: the copy of the current file, made in publish_staging's background thread
        steps = [(publish_module, "StagedVersion"), (publish_staging, "copy_and_flush")]
        # the fingerprints and the gate, before the build
        steps += [(store_module, "table_fingerprints"), (integrity, "findings")]
        # each lane of the build (copies, Parquet, history patches), then what follows it
        steps += [(publish_module, step) for step in ("copy_tables", "write_parquet", "patch_histories", "link_parquet", "write_fingerprints", "fsync_tree")]
        # the switch itself, before the new link is in place (no room for it on the disk)
        steps += [(publish_module, "swap_symlink")]
        versions = sorted(p.name for p in store.mode_dir.iterdir() if p.name.startswith("published."))
        for module, step in steps:
            def boom(*args, _step=step, **kwargs):
                raise OSError(f"injected failure in {_step}")

            with monkeypatch.context() as patch:
                patch.setattr(module, step, boom)
                with pytest.raises(PublishError, match=f"unchanged: injected failure in {step}"):
                    run.publish()
            assert published_state(store) == before, step
            assert sorted(p.name for p in store.mode_dir.iterdir() if p.name.startswith("published.")) == versions, step

        # DuckDB out of memory in the build: the line says which setting to raise, not DuckDB's SET advice
        def out_of_memory(*args, **kwargs):
            raise duckdb.OutOfMemoryException("Out of Memory Error: injected\n\nPossible solutions:\n* SET memory_limit")

        with monkeypatch.context() as patch:
            patch.setattr(publish_module, "write_parquet", out_of_memory)
            with pytest.raises(PublishError) as caught:
                run.publish()
        assert "unchanged: the warehouse ran out of memory under its limit JOFI_WORK_MEMORY=" in str(caught.value)
        assert "DuckDB said: Out of Memory Error: injected)" in str(caught.value) and "SET" not in str(caught.value)
        assert published_state(store) == before

        # the writer is still usable and a later publish succeeds
        run.publish()
    assert published_state(store) != before
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    con.close()


def test_each_parquet_file_holds_its_published_table_in_the_tables_column_order(tmp_path):
    """The Parquet is written from the work database beside the new file's build (publish's
    lanes): after a night whose history tables were patched, not copied, every file still holds
    exactly its published table's rows, columns in the published table's order and of its types,
    even where the work table's differ (a column dropped and added again with another type, as
    an older warehouse's could be)."""
    store = filled(tmp_path / "data", n_teams=3, users=True, published=True)
    with store.open_run("r2", T1) as run:
        run.con.execute("ALTER TABLE teams DROP COLUMN users_count; ALTER TABLE teams ADD COLUMN users_count INTEGER")
        run.upsert("teams", [docs.team(id=2, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=503, first_name="Anne")], T1)
        result = run.publish()
    assert {"teams", "teams_history", "users_history"} <= set(result.changed_tables)
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        for table in TABLES:
            parquet = f"read_parquet('{store.parquet_dir}/{table}/*.parquet')"
            columns = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
            assert con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {parquet})").fetchall() == columns, table
            assert con.execute(f"SELECT count(*) FROM {parquet}").fetchone()[0] == result.row_counts[table], table
            differ = con.execute(
                f"SELECT count(*) FROM ((SELECT * FROM {table} EXCEPT ALL SELECT * FROM {parquet}) "
                f"UNION ALL (SELECT * FROM {parquet} EXCEPT ALL SELECT * FROM {table}))").fetchone()[0]
            assert differ == 0, table
        assert con.execute("SELECT display_name FROM teams_history WHERE id = 2 ORDER BY _valid_from").fetchall()[-1] == ("Renamed",)


@pytest.mark.parametrize("budget, in_lanes", [(0, False), (1 << 40, True)], ids=["past_the_budget", "within_it"])
def test_a_work_database_past_the_lanes_memory_budget_publishes_in_one_lane(tmp_path, monkeypatch, budget, in_lanes):
    """The lanes' statements share the work database's memory limit: three at once ran out of it
    publishing a first sync of 10,000 test takers. A work database past LANES_UP_TO_BYTES
    builds one lane after the other (the Parquet written in the caller's thread) on one DuckDB
    thread (two threads' Parquet writes of its scorecards ran out of it too), one within it in
    lanes, on DuckDB's default threads; the published copy is the same either way."""
    store = filled(tmp_path / "data", n_teams=3, users=True, published=True)
    ran_in: list[str] = []
    threads: list[int] = []
    real = publish_module.write_parquet

    def noting_its_thread(con, *args):
        ran_in.append(threading.current_thread().name)
        threads.append(int(con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return real(con, *args)

    monkeypatch.setattr(publish_module, "write_parquet", noting_its_thread)
    gate_threads: list[int] = []
    real_findings = integrity.findings

    def noting_the_gates_threads(con, *args, **kwargs):
        gate_threads.append(int(con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return real_findings(con, *args, **kwargs)

    monkeypatch.setattr(integrity, "findings", noting_the_gates_threads)
    monkeypatch.setattr(publish_module, "LANES_UP_TO_BYTES", budget)
    with store.open_run("r2", T1) as run:
        run.upsert("teams", [docs.team(id=2, display_name="Renamed")], T1)
        result = run.publish()
    assert len(ran_in) == 1 and ran_in[0].startswith("publish-lane") == in_lanes, ran_in
    with duckdb.connect() as fresh:
        default_threads = int(fresh.execute("SELECT current_setting('threads')").fetchone()[0])
    assert threads == [default_threads if in_lanes else publish_module.ONE_LANE_THREADS]
    assert gate_threads == [default_threads]  # the fingerprints and the gate read on every core either way
    assert {"teams", "teams_history"} <= set(result.changed_tables)
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        parquet = f"read_parquet('{store.parquet_dir}/teams/*.parquet')"
        for source in ("teams", parquet):
            assert con.execute(f"SELECT display_name FROM {source} WHERE id = 2").fetchone() == ("Renamed",), source


def test_the_lanes_budget_is_read_against_the_work_database_alone(tmp_path, monkeypatch):
    """The publish has the previous version's copy attached beside the work database: only the work
    database's own size counts against the budget, not another catalog's nor the sum."""
    store = filled(tmp_path / "data", n_teams=3, users=True, published=True)
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, md5(CAST(range AS VARCHAR)) AS s FROM range(1000000)")
    with store.open_run("r2", T1) as run:
        run.con.execute(f"ATTACH '{other}' AS other_catalog (READ_ONLY)")
        try:
            (other_bytes,) = run.con.execute(
                "SELECT used_blocks * block_size FROM pragma_database_size() WHERE database_name = 'other_catalog'").fetchone()
            assert other_bytes > 15_000_000  # the work database of `filled` holds ~5 MB
            monkeypatch.setattr(publish_module, "LANES_UP_TO_BYTES", other_bytes - 1)
            assert publish_module.lanes_for(run.con) == publish_module.PUBLISH_LANES  # the work database is far smaller
            monkeypatch.setattr(publish_module, "LANES_UP_TO_BYTES", -1)
            assert publish_module.lanes_for(run.con) == 1
        finally:
            run.con.execute("DETACH other_catalog")


def test_the_lanes_budget_is_at_most_half_the_work_databases_memory_limit(store, monkeypatch):
    """The budget leaves the lanes room under the lowest limit the work connection takes (store.py)."""
    monkeypatch.setenv(settings.ENV_WORK_MEMORY, settings.DEFAULT_WORK_MEMORY)
    with store.open_run("r1", T0) as run:
        limit = run.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit == "122.0 MiB", f"{limit!r}: read the budget against it again"  # DuckDB's display of 128MB
    assert 2 * publish_module.LANES_UP_TO_BYTES <= settings.MIN_WORK_MEMORY_BYTES


def test_a_bug_in_the_gate_keeps_its_type_and_the_published_pair(tmp_path, monkeypatch):
    """Only the disk's and DuckDB's errors read as a publish that changed nothing: a bug stays a bug
    (its traceback kept for `--debug` and Dagster), and still leaves no folder behind."""
    store = filled(tmp_path / "data", published=True)
    before = published_state(store)

    def buggy(*args, **kwargs):
        return {}["no_such_rule"]

    with store.open_run("r2", T1) as run:
        run.upsert("teams", [docs.team(id=77)], T1)
        monkeypatch.setattr(integrity, "findings", buggy)
        with pytest.raises(KeyError, match="no_such_rule"):
            run.publish()
    assert published_state(store) == before


def test_a_failure_after_the_switch_is_said_and_the_publish_stands(tmp_path, monkeypatch, caplog):
    """The new version is current once the link is switched: what fails after it (the folder's flush,
    the fixed links) is said with the result, not raised as a publish that changed nothing."""
    store = filled(tmp_path / "data", published=True)
    real_fsync, real_links = publish_module.fsync_path, publish_module.ensure_fixed_links

    def fsync_failing_at_the_switch(path, *args, **kwargs):
        if Path(path) == store.mode_dir:
            raise OSError("injected failure flushing the switch")
        return real_fsync(path, *args, **kwargs)

    def links_failing(targets):
        raise OSError("injected failure fixing the links")

    with store.open_run("r2", T1) as run:
        run.upsert("teams", [docs.team(id=77)], T1)
        monkeypatch.setattr(publish_module, "fsync_path", fsync_failing_at_the_switch)
        monkeypatch.setattr(publish_module, "ensure_fixed_links", links_failing)
        with caplog.at_level("WARNING", logger=publish_module.__name__):
            result = run.publish()
    assert os.readlink(store.mode_dir / "current") == result.version_dir.name
    assert len(result.problems) == 2 and "injected failure flushing the switch" in result.problems[0]
    assert "injected failure fixing the links" in result.problems[1]
    assert caplog.text.count(f"published {result.version_dir.name}, but") == 2
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:  # the links were right already
        assert con.execute("SELECT count(*) FROM teams WHERE id = 77").fetchone() == (1,)


@pytest.mark.e2e  # the reader is another process
def test_reader_in_another_process_survives_publish(store):
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team(id=1)], T0)
        run.publish()
    script = textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(store.published_db_path)!r}, read_only=True)
        print(con.execute("SELECT count(*) FROM teams").fetchone()[0], flush=True)
        sys.stdin.readline()
        print(con.execute("SELECT count(*) FROM teams").fetchone()[0], flush=True)
    """)
    reader = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "1"
        with store.open_run("r2", T1) as run:
            run.upsert("teams", [docs.team(id=2), docs.team(id=3)], T1)
            run.publish()  # must not block on the reader's open read-only connection
        out, _ = reader.communicate("\n", timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert out.strip() == "1"  # the old session keeps its snapshot of the old file
    fresh = duckdb.connect(str(store.published_db_path), read_only=True)
    assert fresh.execute("SELECT count(*) FROM teams").fetchone() == (3,)
    fresh.close()


def test_reader_in_same_process_survives_publish(store):
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team(id=1)], T0)
        run.publish()
        reader = duckdb.connect(str(store.published_db_path), read_only=True)
        assert reader.execute("SELECT count(*) FROM teams").fetchone() == (1,)
        run.upsert("teams", [docs.team(id=2)], T1)
        run.publish()
        assert reader.execute("SELECT count(*) FROM teams").fetchone() == (1,)
        reader.close()
    reader = duckdb.connect(str(store.published_db_path), read_only=True)
    assert reader.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    reader.close()


def test_old_parquet_versions_are_pruned_keeping_previous(store):
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team()], T0)
        results = [run.publish() for _ in range(3)]
    versions = sorted(p.name for p in store.mode_dir.glob("published.*"))
    assert versions == sorted([results[1].parquet_version_dir.parent.name, results[2].parquet_version_dir.parent.name])


def test_real_parquet_directory_is_replaced_by_symlink(store):
    (store.parquet_dir / "teams").mkdir(parents=True)
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team()], T0)
        run.publish()
    assert store.parquet_dir.is_symlink()
    assert (store.parquet_dir / "teams" / "part-0.parquet").exists()


def test_api_key_never_reaches_published_files(store):
    key = "sk_live_SuperSecret123"
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team()], T0)
        run.record_run(SyncRunRecord("r1", T0, T1, "failed", error=f"HTTP 401 with key {key}"))
        run.publish()
    for path in store.mode_dir.rglob("*"):
        if path.is_file():
            assert b"SuperSecret123" not in path.read_bytes(), path


def test_publish_under_a_relative_data_dir_leaves_links_that_resolve(tmp_path, monkeypatch):
    """`make demo` uses ./data: every link must resolve from its own folder, not from the cwd."""
    monkeypatch.chdir(tmp_path)
    relative = WarehouseStore(Path("data"), "live")
    for run_id in ("r1", "r2"):  # the second publish swaps `current` from one version to the next
        with relative.open_run(run_id, T0) as run:
            fill(run)
            run.publish()
    monkeypatch.chdir("/")
    absolute = WarehouseStore(tmp_path / "data", "live")
    with duckdb.connect(str(absolute.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone()[0] == 1
    assert (absolute.parquet_dir / "teams").is_dir()
    assert not os.path.isabs(os.readlink(absolute.mode_dir / "current"))
