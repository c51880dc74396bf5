"""The work database's checkpoint runs beside the publish (checkpoint_beside.py): the run's WAL
is in the file before the run closes, and a checkpoint that fails or cannot run loses nothing."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import checkpoint_beside
from jofi_pipeline.warehouse import store as store_module
from jofi_pipeline.warehouse.checkpoint_beside import CheckpointBeside
from jofi_pipeline_tests.warehouse.conftest import T0, T1, interrupted_once
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


def test_a_checkpoint_beside_an_open_update_is_refused_and_loses_none_of_it(tmp_path, caplog):
    path = tmp_path / "work.duckdb"
    con = make_db_with_wal(path)
    writing = con.cursor()
    writing.begin()
    writing.execute("UPDATE t SET i = i + 1000 WHERE i < 10")
    with caplog.at_level(logging.WARNING, logger=checkpoint_beside.__name__):
        beside = CheckpointBeside(con, "work")
        beside.wait()
    assert isinstance(beside.error, duckdb.TransactionException)  # DuckDB refuses it, and says so
    assert "other write transactions active" in caplog.text
    writing.commit()
    writing.close()
    con.close()
    with duckdb.connect(str(path), read_only=True) as again:
        assert again.execute("SELECT count(*), max(i) FROM t").fetchone() == (100, 1009)


def held_checkpoints(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Every checkpoint begun from here on runs only once `release` is set; `ended` once one has ended."""
    release, ended = threading.Event(), threading.Event()
    real_run = CheckpointBeside._run

    def held_run(self, cursor):
        release.wait(30)
        real_run(self, cursor)
        ended.set()

    monkeypatch.setattr(CheckpointBeside, "_run", held_run)
    return release, ended


class Stop(BaseException):
    """What a signal handler raises here, as Dagster's raises its interruption."""


def test_a_wait_interrupted_waits_for_the_checkpoint_to_end_then_goes_on(tmp_path, monkeypatch):
    """Closing the connection under a running checkpoint aborts the interpreter; an interruption
    of the close's wait (a second Ctrl-C, Dagster's stop) must wait for the checkpoint too."""
    path = tmp_path / "work.duckdb"
    con = make_db_with_wal(path)
    release, ended = held_checkpoints(monkeypatch)
    with interrupted_once(0.1, release, Stop):  # lands inside wait()
        beside = CheckpointBeside(con, "work")
        with pytest.raises(Stop):
            beside.wait()
        assert ended.is_set() and beside.error is None  # the interruption went on only once it had ended
    assert wal_bytes(path) == 0
    con.close()


def test_a_close_interrupted_while_the_checkpoint_runs_still_closes_and_unlocks_then_goes_on(store, monkeypatch):
    release, ended = held_checkpoints(monkeypatch)

    def stop(signum, frame):
        threading.Timer(0.2, release.set).start()
        raise Stop()

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        writer = store.open_run("r1", T0)
        fill(writer, n_teams=20)
        writer.publish()  # its checkpoint is held: still running when the close begins
        con = writer.con
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # lands in the close's wait
        with pytest.raises(Stop):
            writer.close()
        assert ended.is_set()  # the interruption went on only once the checkpoint had ended
        with pytest.raises(duckdb.ConnectionException):  # and once the connection was closed
            con.execute("SELECT 1")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()
    with store.open_run("r2", T1) as again:  # the lock is free
        assert again.con.execute("SELECT count(*) FROM teams").fetchone() == (20,)


def test_a_close_whose_wait_is_cut_short_never_closes_the_connection_under_the_checkpoint(store, monkeypatch):
    """A second signal a few microseconds after the first can get out of `wait()` before the
    checkpoint has ended: the close must then leave the connection open (closing it under the
    checkpoint aborts the interpreter), and still release the lock."""
    release, _ = held_checkpoints(monkeypatch)

    def cut_short(self):
        raise Stop()

    writer = store.open_run("r1", T0)
    try:
        fill(writer, n_teams=5)
        writer.publish()
        con, checkpoint = writer.con, writer._checkpoint
        monkeypatch.setattr(CheckpointBeside, "wait", cut_short)
        with pytest.raises(Stop):
            writer.close()
        assert not checkpoint.ended
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (5,)  # left open, not closed under it
    finally:
        release.set()
    checkpoint._ended.wait(30)
    con.close()
    with store.open_run("r2", T1) as again:  # the lock was released all the same
        assert again.con.execute("SELECT count(*) FROM teams").fetchone() == (5,)


def test_with_little_disk_the_checkpoint_waits_for_the_close_and_the_publish_goes_on(store, monkeypatch, caplog):
    """A checkpoint that runs out of disk invalidates the database (checkpoint_beside.py): with less
    free than it and the publish beside it may need, none begins; the close writes the WAL."""
    real_usage = checkpoint_beside.disk_usage
    begun: list[str] = []
    monkeypatch.setattr(CheckpointBeside, "_run", lambda self, cursor: begun.append("checkpoint"))
    with store.open_run("r1", T0) as writer:
        fill(writer, n_teams=50)
        wal = wal_bytes(store.work_db_path)
        assert wal > 0
        short = checkpoint_beside.room_needed(store.work_db_path) - 1
        monkeypatch.setattr(checkpoint_beside, "disk_usage",
                            lambda path: real_usage(path)._replace(free=short))
        with caplog.at_level(logging.WARNING, logger=store_module.__name__):
            writer.publish()
        assert writer._checkpoint is None and begun == []
        assert "its checkpoint waits for the close, after the publish" in caplog.text
        assert wal_bytes(store.work_db_path) > 0
    assert wal_bytes(store.work_db_path) == 0  # the close wrote it
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (50,)


def test_room_is_twice_the_wal_the_database_and_the_margin(tmp_path, monkeypatch):
    path = tmp_path / "work.duckdb"
    con = make_db_with_wal(path)
    needed = 2 * wal_bytes(path) + path.stat().st_size + checkpoint_beside.CHECKPOINT_ROOM_MARGIN_BYTES
    assert checkpoint_beside.room_needed(path) == needed
    real_usage = checkpoint_beside.disk_usage
    for free, room in ((needed, True), (needed - 1, False)):
        monkeypatch.setattr(checkpoint_beside, "disk_usage", lambda p, free=free: real_usage(p)._replace(free=free))
        assert checkpoint_beside.has_room(path) is room
    monkeypatch.undo()
    con.close()
    assert checkpoint_beside.has_room(path)  # no WAL left: the file and the margin, which this disk has
