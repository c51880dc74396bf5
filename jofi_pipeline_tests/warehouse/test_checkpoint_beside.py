"""The work database's checkpoint runs beside the publish (checkpoint_beside.py): the run's WAL
is in the file before the run closes, and a checkpoint that fails or cannot run loses nothing."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import duckdb

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import checkpoint_beside
from jofi_pipeline.warehouse import store as store_module
from jofi_pipeline.warehouse.checkpoint_beside import CheckpointBeside
from jofi_pipeline_tests.warehouse.conftest import T0, T1
from jofi_pipeline_tests.warehouse.test_publish import fill


def wal_bytes(db: Path) -> int:
    wal = Path(f"{db}.wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_runs_wal_is_in_the_file_before_the_run_closes_and_the_checkpoint_ran_beside_the_publish(store, monkeypatch):
    during: list[str] = []
    real_run, real_publish = CheckpointBeside._run, store_module.publish

    def run(self, cursor):  # in the checkpoint's thread
        during.append(f"checkpoint {threading.current_thread().name}")
        real_run(self, cursor)

    def publish(*args, **kwargs):  # the publish proper, after the gate
        during.append("publish")
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(CheckpointBeside, "_run", run)
    monkeypatch.setattr(store_module, "publish", publish)
    with store.open_run("r1", T0) as writer:
        fill(writer, n_teams=50)
        writer.publish()
        writer.upsert("teams", [docs.team(id=i, display_name=f"Team {i} renamed") for i in range(1, 51)], T1)
        assert wal_bytes(store.work_db_path) > 0  # the night's merges are in the WAL
        during.clear()
        writer.publish()
        writer._checkpoint.wait()
        # Before the close: the checkpoint beside the publish wrote the WAL into the file.
        assert wal_bytes(store.work_db_path) == 0
    assert sorted(during) == ["checkpoint work-checkpoint", "publish"]  # in its own thread, once a publish
    with duckdb.connect(str(store.work_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FILTER (WHERE display_name LIKE '% renamed'), count(*) FROM teams").fetchone() == (50, 50)


def make_db_with_wal(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (i INTEGER)")
    con.execute("CHECKPOINT")
    con.execute("INSERT INTO t SELECT range FROM range(100)")
    assert wal_bytes(path) > 0
    return con


def test_a_checkpoint_that_fails_is_said_and_the_close_writes_the_wal_instead(tmp_path, caplog):
    path = tmp_path / "work.duckdb"
    con = make_db_with_wal(path)
    with caplog.at_level(logging.WARNING, logger=checkpoint_beside.__name__):
        failing = CheckpointBeside(con, "no_such_catalog")
        failing.wait()
    assert isinstance(failing.error, duckdb.Error)
    assert "checkpoint beside the publish failed (the close tries again)" in caplog.text
    assert wal_bytes(path) > 0  # nothing written, nothing lost
    con.close()
    assert wal_bytes(path) == 0
    with duckdb.connect(str(path), read_only=True) as again:
        assert again.execute("SELECT count(*) FROM t").fetchone() == (100,)


def test_a_checkpoint_beside_an_open_write_does_nothing_and_loses_none_of_it(tmp_path):
    path = tmp_path / "work.duckdb"
    con = make_db_with_wal(path)
    writing = con.cursor()
    writing.begin()
    writing.execute("INSERT INTO t VALUES (1000)")
    beside = CheckpointBeside(con, "work")
    beside.wait()
    assert beside.error is None  # DuckDB skips a checkpoint it cannot make; it does not fail
    writing.commit()
    writing.close()
    con.close()
    with duckdb.connect(str(path), read_only=True) as again:
        assert again.execute("SELECT count(*), max(i) FROM t").fetchone() == (101, 1000)
