"""A full build starts from a copy of an empty published database made once per process: the same
tables, comments, views and macros as building them statement by statement, without running
those statements again; a changed registry or a vanished file makes a new one."""

from __future__ import annotations

import dataclasses

import duckdb

from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse import publish_template
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline_tests.warehouse.conftest import T0, spy
from jofi_pipeline_tests.warehouse.test_publish import fill
from jofi_pipeline_tests.warehouse.test_publish_incremental import contents
from jofi_pipeline_tests.warehouse.test_publish_refill import created_tables


def schema_statements(monkeypatch) -> dict:
    """What each publish from now on runs of the DDL: the tables it creates, how often it makes the views."""
    ran = {"tables": created_tables(monkeypatch), "views": 0}
    spy(monkeypatch, publish_module, "create_views", lambda con: ran.update(views=ran["views"] + 1))
    return ran


def full_build(run, folder) -> WarehouseStore:
    """A first publish of the run's work database into another, empty data folder."""
    other = WarehouseStore(folder, "live")
    other.mode_dir.mkdir(parents=True)
    publish_module.publish(run.con, other.paths)
    return other


def statement_built(run, path) -> dict:
    """The same file made the old way: every statement into a new file, then the rows."""
    con = run.con
    publish_module.build_empty_database(con, path)
    con.execute(f"ATTACH '{path}' AS {publish_module.PUBLISH_CATALOG}")
    try:
        publish_module.copy_tables(con, list(TABLES))
        con.execute(f"CHECKPOINT {publish_module.PUBLISH_CATALOG}")
    finally:
        con.execute(f"DETACH {publish_module.PUBLISH_CATALOG}")
    return contents(path)


def test_full_builds_after_the_first_copy_the_empty_database_and_equal_a_statement_by_statement_build(
    store: WarehouseStore, tmp_path, monkeypatch,
):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        first = full_build(run, tmp_path / "first")  # may make the empty database (or an earlier test did)
        ran = schema_statements(monkeypatch)
        second = full_build(run, tmp_path / "second")
        assert ran == {"tables": [], "views": 0}  # no CREATE TABLE, COMMENT or view of its own
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    for built in (first, second):
        assert contents(built.published_db_path) == expected
        with duckdb.connect(str(built.published_db_path), read_only=True) as con:
            macros = {name for (name,) in con.execute(
                "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal"
            ).fetchall()}
            assert {"invitations_as_of", "test_takers_as_of"} <= macros
            assert con.execute("SELECT count(*) FROM teams").fetchone()[0] == 2
        assert storage_version(built.published_db_path).startswith("v1.4.0")  # DuckDB 1.4 tools can open it


def test_a_changed_registry_makes_a_new_empty_database(store: WarehouseStore, tmp_path, monkeypatch):
    with store.open_run("r1", T0) as run:
        fill(run)
        full_build(run, tmp_path / "before")
        spec = TABLES["teams"]
        monkeypatch.setitem(TABLES, "teams", dataclasses.replace(spec, comment=spec.comment + " A new word."))
        ran = schema_statements(monkeypatch)
        after = full_build(run, tmp_path / "after")
        assert ran == {"tables": list(TABLES), "views": 1}  # made again, with the new comment
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(after.published_db_path) == expected
    with duckdb.connect(str(after.published_db_path), read_only=True) as con:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'teams'").fetchone()[0]
    assert "A new word." in comment


def test_an_empty_database_removed_from_under_the_process_is_made_again(store: WarehouseStore, tmp_path, monkeypatch):
    with store.open_run("r1", T0) as run:
        fill(run)
        full_build(run, tmp_path / "before")
        for made in publish_template._made.values():
            made.unlink(missing_ok=True)  # a /tmp cleaner, or a person tidying up
        ran = schema_statements(monkeypatch)
        after = full_build(run, tmp_path / "after")
        assert ran == {"tables": list(TABLES), "views": 1}
    with duckdb.connect(str(after.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone()[0] == 1


def test_a_forked_child_never_removes_its_parents_empty_databases(store: WarehouseStore, tmp_path, monkeypatch):
    with store.open_run("r1", T0) as run:
        fill(run)
        full_build(run, tmp_path / "parent")
    folder, owner = publish_template._folder, publish_template._owner_pid
    assert folder is not None and any(folder.iterdir())
    # The exit hook a forked child inherits (a CLI forked from a warm process), run in that child:
    monkeypatch.setattr(publish_template.os, "getpid", lambda: owner + 1)
    publish_template._remove_folder(folder, owner)
    assert any(folder.iterdir())  # still there for the parent's next full build
    monkeypatch.undo()
    with store.open_run("r2", T0) as run:  # and the parent still copies it
        ran = schema_statements(monkeypatch)
        full_build(run, tmp_path / "parent-again")
        assert ran == {"tables": [], "views": 0}


def test_without_a_writable_temporary_folder_a_full_build_still_publishes(store: WarehouseStore, tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/tmp")

    monkeypatch.setattr(publish_template, "_made", {})
    monkeypatch.setattr(publish_template, "_folder", None)
    monkeypatch.setattr(publish_template.tempfile, "mkdtemp", refused)
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        ran = schema_statements(monkeypatch)
        built = full_build(run, tmp_path / "no-tmp")
        assert ran == {"tables": list(TABLES), "views": 1}  # built in place, statement by statement
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(built.published_db_path) == expected


def test_a_temporary_folder_duckdb_cannot_write_still_publishes(store: WarehouseStore, tmp_path, monkeypatch):
    """DuckDB, not the OS, reports a full or unwritable TMPDIR: its IOException while making the
    empty database there, and the full build goes on in place."""
    monkeypatch.setattr(publish_template, "_made", {})
    monkeypatch.setattr(publish_template, "_folder", None)
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        other = WarehouseStore(tmp_path / "full-tmp", "live")
        other.mode_dir.mkdir(parents=True)
        real = publish_module.build_empty_database

        def tmp_is_full(con, path):
            if str(path).startswith(str(publish_template._template_folder())):
                raise duckdb.IOException("Could not write file: No space left on device")
            return real(con, path)

        monkeypatch.setattr(publish_module, "build_empty_database", tmp_is_full)
        publish_module.publish(run.con, other.paths)
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(other.published_db_path) == expected
    assert publish_template._made == {}  # nothing half-made is ever copied


def storage_version(path) -> str:
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{path}' AS f (READ_ONLY)")
        return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'f'").fetchone()[0]
