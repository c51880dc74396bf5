"""A changed table whose schema did not change is refilled in the copied file, not created again:
same catalog entry (no DDL, no comments re-applied), same contents as a full build, and a file that
does not grow night after night."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import duckdb

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline_tests.warehouse.conftest import T0, T1, spy
from jofi_pipeline_tests.warehouse.test_publish import fill, filled
from jofi_pipeline_tests.warehouse.test_publish_incremental import contents


def created_tables(monkeypatch) -> list[str]:
    """The tables each publish from now on creates (DDL and comments), in call order."""
    created: list[str] = []
    spy(monkeypatch, publish_module, "ensure_schema",
        lambda con, catalog=None, specs=None, **kwargs: created.extend(spec.name for spec in specs or TABLES.values()))
    return created


def full_build(run, folder) -> dict:
    full_store = WarehouseStore(folder, "live")
    full_store.mode_dir.mkdir(parents=True)
    publish_module.publish(run.con, full_store.paths)
    return contents(full_store.published_db_path)


def test_a_changed_table_with_the_same_schema_is_refilled_in_place(store: WarehouseStore, tmp_path, monkeypatch):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=3)
        run.publish()
        created = created_tables(monkeypatch)
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T0 + timedelta(hours=1))
        result = run.publish()
        assert "teams" in result.changed_tables
        assert created == []  # the same tables, emptied and filled again
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert ("Renamed",) in con.execute("SELECT display_name FROM teams").fetchall()


def test_a_changed_schema_still_creates_the_table_again(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        created = created_tables(monkeypatch)
        spec = TABLES["teams"]
        monkeypatch.setitem(TABLES, "teams", dataclasses.replace(spec, comment=spec.comment + " Renamed comment."))
        result = run.publish()
        assert "teams" in result.changed_tables
        assert created == ["teams"]  # the new comment needs the table made again
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")


def test_refilling_night_after_night_does_not_grow_the_file(store: WarehouseStore):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=400)
        run.publish()
        sizes = []
        for night in range(1, 4):
            rows = [docs.team(id=i, display_name=f"Name {i} {night}") for i in range(1, 401)]
            run.upsert("teams", rows, T0 + timedelta(days=night))
            run.publish()
            sizes.append((store.published_db_path.resolve()).stat().st_size)
    assert max(sizes[1:]) <= sizes[0] * 1.5, sizes  # teams_history grows by design; teams must not pile up


def test_a_table_missing_from_the_copied_file_is_created_not_refilled(store: WarehouseStore, tmp_path, monkeypatch):
    """A published file someone changed by hand (a table dropped) while its manifest still lists the
    table: the refill has nothing to empty, so the table is created again, and the result is whole.

    A change the file's size or modification time shows is never built on (test_publish_incremental:
    a published file replaced by hand); this is one they would not show."""
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=3)
        run.publish()
    with duckdb.connect(str(store.published_db_path.resolve())) as con:
        con.execute("DROP TABLE teams")
    monkeypatch.setattr(publish_module.PreviousVersion, "db_file_unchanged", lambda self: True)
    created = created_tables(monkeypatch)
    with store.open_run("r2", T0 + timedelta(hours=1)) as run:
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T0 + timedelta(hours=1))
        run.publish()
        assert created == ["teams"]
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")
