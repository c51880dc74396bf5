"""Settled tables put into the publish's copy while the run fetches (publish_ahead.py): history
tables patched into a copy of the current version, or, for a first publish, tables copied whole
into the empty database. The published file and Parquet must be exactly what a publish without the
head start makes, whatever the run writes after a table settled, and a run that never publishes
leaves nothing behind."""

from __future__ import annotations

import json
import logging
import os
import threading

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse import publish_ahead
from jofi_pipeline.warehouse.publish import AHEAD_DIR
from jofi_pipeline_tests.warehouse.conftest import T1
from jofi_pipeline_tests.warehouse.test_publish import filled
from jofi_pipeline_tests.warehouse.test_publish_incremental import contents


@pytest.fixture
def ahead_log(caplog):
    caplog.set_level(logging.DEBUG, logger="jofi_pipeline.warehouse.publish")
    return lambda: [r.getMessage() for r in caplog.records if "patched ahead" in r.getMessage()]


def settle_and_wait(run, tables: list[str]) -> None:
    """`settled`, then wait for its batch, so what the run writes next comes after it."""
    run.settled(tables)
    run._ahead.finish()  # the publish finishes it as well; here the order must be certain


def full_build(run, tmp_path) -> dict:
    """The same work database published from scratch: what the head start must not change (its
    tables, views and comments, and the row counts its result and manifest give)."""
    full = WarehouseStore(tmp_path / "full", "live")
    full.mode_dir.mkdir(parents=True)
    result = publish_module.publish(run.con, full.paths)
    return contents(full.published_db_path) | {"row_counts": result.row_counts, "manifest": manifest_rows(result.version_dir)}


def manifest_rows(version_dir) -> dict[str, int]:
    tables = json.loads((version_dir / publish_module.FINGERPRINTS_NAME).read_text())["tables"]
    return {name: table["rows"] for name, table in tables.items()}


def published(store: WarehouseStore, result) -> dict:
    """What `full_build` gives, of the publish under test."""
    return contents(store.published_db_path) | {"row_counts": result.row_counts, "manifest": manifest_rows(result.version_dir)}


def parquet_rows(store: WarehouseStore, table: str) -> list[str]:
    return sorted(map(repr, duckdb.sql(f"SELECT * FROM '{store.parquet_dir}/{table}/part-0.parquet'").fetchall()))


def three_copies(run, store: WarehouseStore, table: str) -> tuple[list, list, list]:
    """The table's rows in the work database, the published file and its Parquet, read through one
    connection (so their timestamps compare alike)."""
    with run.con.cursor() as cur:
        cur.execute(f"ATTACH '{store.published_db_path}' AS published (READ_ONLY)")
        try:
            return tuple(cur.execute(f"SELECT * FROM {source} ORDER BY ALL").fetchall() for source in (
                table, f"published.{table}", f"'{store.parquet_dir}/{table}/part-0.parquet'"))
        finally:
            cur.execute("DETACH published")


def test_a_settled_history_table_is_published_from_its_head_start_exactly(tmp_path, ahead_log):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.settled(["teams"])
        result = run.publish()
        expected = full_build(run, tmp_path)
    assert ahead_log() == ["history patched ahead of the publish: teams_history done; none changed since, copied whole"]
    assert result.changed_tables == ("teams", "teams_history")
    assert published(store, result) == expected
    assert parquet_rows(store, "teams_history") == expected["tables"]["teams_history"]
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        chain = con.execute("SELECT display_name, _is_current FROM teams_history WHERE id = 1 ORDER BY _valid_from").fetchall()
    assert chain == [("Recruiting", False), ("Renamed", True)]
    assert not (result.version_dir / AHEAD_DIR).exists()


WRITES = {  # what the run writes before the table settles, and after
    "the same record changed again": ([docs.team(id=1, display_name="Renamed")], [docs.team(id=1, display_name="Renamed again")]),
    "a new record, then another": ([docs.team(id=2, display_name="Second")], [docs.team(id=3, display_name="Third")]),
}


@pytest.mark.parametrize("writes", WRITES)
def test_a_history_table_written_again_after_it_settled_is_copied_whole_not_patched_twice(tmp_path, ahead_log, writes):
    """The copy then holds the table as it settled: patched again from the previous version's rows,
    it would get the night's first versions twice, and when the night only added versions the
    sums would even prove it. So it is copied whole."""
    before, after = WRITES[writes]
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", before, T1)
        settle_and_wait(run, ["teams"])
        run.upsert("teams", after, T1)
        result = run.publish()
        expected = full_build(run, tmp_path)
        work, published_rows, parquet = three_copies(run, store, "teams_history")
    assert ahead_log() == ["history patched ahead of the publish: none done; teams_history changed since, copied whole"]
    assert "teams_history" in result.changed_tables
    assert published(store, result) == expected
    assert published_rows == work and parquet == work
    assert len({row[:1] + row[7:8] for row in published_rows}) == len(published_rows)  # one row per (id, _valid_from)
    assert not (result.version_dir / AHEAD_DIR).exists()


def test_a_run_that_never_publishes_drops_its_head_start_and_the_next_run_publishes(tmp_path):
    store = filled(tmp_path / "data", published=True)
    before = contents(store.published_db_path)
    versions_before = sorted(p.name for p in store.mode_dir.glob("published.*"))
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.settled(["teams"])  # left running: closing the run must wait for it
    assert sorted(p.name for p in store.mode_dir.glob("published.*")) == versions_before
    assert contents(store.published_db_path) == before
    with store.open_run("r3", T1) as run:  # the work database kept r2's rows; nothing is attached
        run.stage_publish()
        run.settled(["teams"])
        run.publish()
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT display_name FROM teams WHERE id = 1").fetchone() == ("Renamed",)


def test_only_history_tables_are_taken_and_a_table_without_history_is_ignored(tmp_path, ahead_log):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        assignments = [docs.assignment(11111, 6, completed_at="2026-03-02T01:00:00Z"), docs.assignment(22222, 7)]
        run.upsert("test_takers", [docs.test_taker(first_name="Changed", assignments=assignments)], T1)
        run.settled(["assessments", "test_takers", "no_such_table"])
        result = run.publish()
        expected = full_build(run, tmp_path)
    # test_takers carries its child table's history along; assessments keep no history.
    assert ahead_log() == ["history patched ahead of the publish: test_takers_history, test_taker_assessments_history "
                           "done; none changed since, copied whole"]
    assert published(store, result) == expected


class SlowPatch:
    """publish_ahead's apply_patch held once it has written, until released: a batch under way
    (its transaction open) while the run goes on."""

    def __init__(self, monkeypatch) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.tables: list[str] = []
        self.ended = False
        real = publish_ahead.apply_patch

        def slow(con, spec, *args, **kwargs):
            self.tables.append(spec.name)
            try:
                return real(con, spec, *args, **kwargs)  # written, not committed: then held
            finally:
                self.started.set()
                self.release.wait(10)
                self.ended = True

        monkeypatch.setattr(publish_ahead, "apply_patch", slow)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("end", ["the run closes without publishing", "the run publishes"])
def test_a_batch_under_way_is_waited_for_and_one_not_begun_is_dropped(tmp_path, monkeypatch, caplog, ahead_log, end):
    """A cancelled batch never counts as done to concurrent.futures.wait: waiting on it hung the close."""
    slow = SlowPatch(monkeypatch)
    store = filled(tmp_path / "data", users=True, published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=501, first_name="Changed")], T1)
        run.settled(["teams"])
        assert slow.started.wait(10)
        run.settled(["users"])  # queued behind the batch under way
        threading.Timer(0.3, slow.release.set).start()
        if end == "the run publishes":
            result = run.publish()
            expected = full_build(run, tmp_path)
        staged = run._ahead.staged.version_dir if run._ahead is not None else None
    assert slow.ended, "the batch under way ended before the run did"
    assert slow.tables == ["teams_history"], "the batch not begun was dropped"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    if end == "the run publishes":
        assert ahead_log() == ["history patched ahead of the publish: teams_history done; none changed since, copied whole"]
        assert published(store, result) == expected  # users_history by the publish itself
    else:
        assert staged is not None and not staged.exists()
        assert sorted(p.name for p in store.mode_dir.glob("published.*")) == [os.readlink(store.mode_dir / "current")]


def test_an_unproven_patch_undoes_its_batch_and_the_publish_does_it(tmp_path, monkeypatch, ahead_log):
    real = publish_ahead.apply_patch

    def unproven(con, spec, *args, **kwargs):
        exact = real(con, spec, *args, **kwargs)
        return False if spec.name == "teams_history" else exact

    monkeypatch.setattr(publish_ahead, "apply_patch", unproven)
    store = filled(tmp_path / "data", users=True, published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=501, first_name="Changed")], T1)
        settle_and_wait(run, ["teams", "users"])
        result = run.publish()
        expected = full_build(run, tmp_path)
    assert ahead_log() == []  # nothing taken from the head start: users_history was undone with it
    assert {"teams_history", "users_history"} <= set(result.changed_tables)
    assert published(store, result) == expected


def test_a_table_the_patch_cannot_start_from_does_not_cost_the_others_their_head_start(tmp_path, ahead_log):
    """The previous version holds no users yet: its users_history cannot be patched (nothing to
    start from), which leaves that one to the publish, not the whole batch."""
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=501)], T1)
        run.settled(["teams", "users"])
        result = run.publish()
        expected = full_build(run, tmp_path)
    assert ahead_log() == ["history patched ahead of the publish: teams_history done; none changed since, copied whole"]
    assert {"teams_history", "users_history"} <= set(result.changed_tables)
    assert published(store, result) == expected


def test_a_table_whose_file_written_ahead_is_gone_is_published_all_the_same(tmp_path, ahead_log):
    """The Parquet file written ahead is the publish's only copy of that table's Parquet: gone (a
    cleaner of the staged folder, a full disk), the table is copied and written as any changed one."""
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        settle_and_wait(run, ["teams"])
        (run._staged.version_dir / AHEAD_DIR / "teams_history.parquet").unlink()
        result = run.publish()
        expected = full_build(run, tmp_path)
    assert ahead_log() == ["history patched ahead of the publish: none done; teams_history changed since, copied whole"]
    assert published(store, result) == expected
    assert parquet_rows(store, "teams_history") == expected["tables"]["teams_history"]
    assert not (result.version_dir / AHEAD_DIR).exists()  # the folder (here empty) is removed


@pytest.fixture
def full_disk_ahead(monkeypatch):
    """The head start's Parquet writes fail as on a full disk."""

    def full_disk(*args, **kwargs):
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(publish_ahead, "write_parquet_file", full_disk)


@pytest.mark.parametrize(("nightly", "told"), [(True, "patch teams_history"), (False, "copy teams, teams_history")])
def test_a_batch_that_fails_says_so_once_and_the_publish_does_its_work(tmp_path, full_disk_ahead, caplog, ahead_log, nightly, told):
    """A full disk while the head start writes its Parquet (a nightly's patch, or a first publish's
    copy, whose batch had placed the empty database): one warning naming the tables, the batch
    undone, and the publish as if there had been no head start."""
    store = filled(tmp_path / "data", published=nightly)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        settle_and_wait(run, ["teams"])
        result = run.publish()
        expected = full_build(run, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"could not {told} into the publish's copy ahead of the publish (the publish "
                        "will): No space left on device"]
    assert [r.getMessage() for r in caplog.records if " ahead of the publish: " in r.getMessage()] == []  # nothing taken
    assert published(store, result) == expected
    assert not (result.version_dir / AHEAD_DIR).exists()


# A first publish (no version yet): settled tables are copied whole into the empty database.

@pytest.fixture
def first_log(caplog):
    caplog.set_level(logging.DEBUG, logger="jofi_pipeline.warehouse.publish")
    return lambda: [r.getMessage() for r in caplog.records if "copied ahead" in r.getMessage()]


def test_a_first_publish_takes_the_tables_copied_ahead_exactly(tmp_path, first_log):
    store = filled(tmp_path / "data", n_teams=3, users=True)  # r1 filled the work database, never published
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        settle_and_wait(run, ["teams", "users"])
        result = run.publish()
        expected = full_build(run, tmp_path)
        copies = {table: three_copies(run, store, table) for table in ("teams", "teams_history", "users")}
    assert first_log() == ["tables copied ahead of the publish: teams, teams_history, users, users_history done; "
                           "none changed since, copied whole"]
    assert set(result.changed_tables) == set(publish_module.TABLES)  # a first publish writes every table
    assert published(store, result) == expected  # the tables not settled too, copied by the publish
    for table, (work, in_file, in_parquet) in copies.items():
        assert work and in_file == work and in_parquet == work, table
    assert not (result.version_dir / AHEAD_DIR).exists()


def test_a_table_written_again_after_it_was_copied_ahead_is_emptied_and_copied_again(tmp_path, first_log):
    store = filled(tmp_path / "data", n_teams=2)
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        settle_and_wait(run, ["teams"])
        run.upsert("teams", [docs.team(id=3, display_name="Third")], T1)
        result = run.publish()
        expected = full_build(run, tmp_path)
        work, in_file, in_parquet = three_copies(run, store, "teams")
    assert first_log() == ["tables copied ahead of the publish: none done; teams, teams_history changed since, copied whole"]
    assert published(store, result) == expected
    assert len(work) == 3 and in_file == work and in_parquet == work  # each row once: the copy ahead was emptied


def test_a_first_run_that_never_publishes_leaves_no_version_behind(tmp_path):
    store = filled(tmp_path / "data")
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        run.settled(["teams", "users", "test_takers"])  # left running: closing the run must wait for it
    assert list(store.mode_dir.glob("published.*")) == []
    assert not store.published_db_path.exists()
    with store.open_run("r3", T1) as run:
        run.stage_publish()
        run.settled(["teams"])
        run.publish()
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (1,)


def teams_history_under_way(run, slow: SlowPatch) -> None:
    """A nightly's renamed team, settled: its history's batch is under way (held by `slow`)."""
    run.stage_publish()
    run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
    run.settled(["teams"])
    assert slow.started.wait(10)


def judged_then_released(monkeypatch, slow: SlowPatch) -> list[bool]:
    """For each time the gate judges: whether the batch under way had not ended yet. Once judged,
    the batch is let end, so a publish that waited for it before judging waits its 10 s out."""
    from jofi_pipeline.warehouse import integrity

    while_under_way: list[bool] = []
    real = integrity.findings

    def findings(*args, **kwargs):
        while_under_way.append(not slow.ended)
        try:
            return real(*args, **kwargs)
        finally:
            slow.release.set()

    monkeypatch.setattr(integrity, "findings", findings)
    return while_under_way


@pytest.mark.timeout(60)
def test_the_gate_judges_while_the_batch_under_way_ends_and_the_publish_takes_it(tmp_path, monkeypatch, caplog, ahead_log):
    """The publish used to wait for the batch under way (single-threaded, ~0.2-0.3 s at the end of
    a first sync at concurrency 64) before its fingerprints and gate began: they read only the work
    database, which the batch does not write, so they run meanwhile. The work database's checkpoint
    still waits for the batch (DuckDB refuses it beside one): nothing is said about either."""
    store = filled(tmp_path / "data", users=True, published=True)
    slow = SlowPatch(monkeypatch)
    while_under_way = judged_then_released(monkeypatch, slow)  # after `filled`: its own first publish judges too
    with store.open_run("r2", T1) as run:
        teams_history_under_way(run, slow)
        result = run.publish()
        expected = full_build(run, tmp_path)
        checkpoint = run._checkpoint
    assert while_under_way == [True], "the gate judged while the batch was still under way"
    assert slow.ended and slow.tables == ["teams_history"]
    assert checkpoint.ended and checkpoint.error is None  # it waited for the batch, and wrote the WAL
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert ahead_log() == ["history patched ahead of the publish: teams_history done; none changed since, copied whole"]
    assert published(store, result) == expected


@pytest.mark.timeout(60)
def test_a_publish_refused_beside_the_batch_under_way_waits_for_it_and_leaves_the_published_pair(tmp_path, monkeypatch):
    """Refused by its gate while the batch still runs: the refusal is raised only once the batch
    has ended (the close then closes the connection it read through), the published pair is as it
    was, and the staged folder the batch wrote into is gone."""
    from jofi_pipeline.warehouse.errors import PublishRefusedError
    from jofi_pipeline_tests.warehouse.test_publish import published_state

    store = filled(tmp_path / "data", users=True, published=True)
    before = published_state(store)
    slow = SlowPatch(monkeypatch)
    while_under_way = judged_then_released(monkeypatch, slow)
    with store.open_run("r2", T1) as run:
        teams_history_under_way(run, slow)
        staged = run._ahead.staged.version_dir
        run.con.execute("INSERT INTO teams SELECT * FROM teams WHERE id = 1")  # a key held twice: refused
        with pytest.raises(PublishRefusedError, match="teams.keys_unique_not_null"):
            run.publish()
        assert slow.ended, "the batch had ended before the refusal went on"
    assert while_under_way == [True]
    assert not staged.exists()
    assert published_state(store) == before


class Stop(BaseException):
    """Stands for Dagster's interruption or a second Ctrl-C (a BaseException, as they are)."""


@pytest.mark.timeout(60)
def test_a_publish_interrupted_while_it_waits_for_the_batch_under_way_drops_its_staged_copy(tmp_path, monkeypatch):
    """The gate has judged; the publish waits for the batch under way (its interruption held until
    the batch has ended). The interruption then goes on, and the staged copy goes with it: the
    folder the batch wrote into is not left behind, and the published pair is as it was."""
    from jofi_pipeline_tests.warehouse.conftest import interrupted_once
    from jofi_pipeline_tests.warehouse.test_publish import published_state

    store = filled(tmp_path / "data", users=True, published=True)
    before = published_state(store)
    slow = SlowPatch(monkeypatch)
    with store.open_run("r2", T1) as run:
        teams_history_under_way(run, slow)
        staged = run._ahead.staged.version_dir
        with interrupted_once(0.5, slow.release, Stop):  # the gate of this small warehouse is done by then
            with pytest.raises(Stop):
                run.publish()
            assert slow.ended, "the interruption went on only once the batch had ended"
    assert not staged.exists()
    assert published_state(store) == before
