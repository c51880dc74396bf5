"""A full build starts from a copy of an empty published database, made once and shared by this
user's processes: the same tables, comments, views and macros as building them statement by
statement, without running those statements again; a changed registry or code, a vanished or
damaged file makes a new one; a folder anyone else could write is never copied from."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import types

import duckdb
import pytest

from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse import publish_template
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline_tests.warehouse.conftest import T1, spy
from jofi_pipeline_tests.warehouse.test_publish import filled
from jofi_pipeline_tests.warehouse.test_publish_incremental import contents
from jofi_pipeline_tests.warehouse.test_publish_refill import created_tables


@pytest.fixture
def fresh_tmp(monkeypatch, tmp_path):
    """A temporary folder of the test's own, and a process that has made no empty database yet."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(publish_template.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(publish_template, "_made", {})
    return monkeypatch


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
    tmp_path, monkeypatch,
):
    with filled(tmp_path / "data", 2).open_run("r2", T1) as run:
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


def test_a_changed_registry_makes_a_new_empty_database(tmp_path, fresh_tmp):
    with filled(tmp_path / "data").open_run("r2", T1) as run:
        full_build(run, tmp_path / "before")
        spec = TABLES["teams"]
        fresh_tmp.setitem(TABLES, "teams", dataclasses.replace(spec, comment=spec.comment + " A new word."))
        ran = schema_statements(fresh_tmp)
        after = full_build(run, tmp_path / "after")
        assert ran == {"tables": list(TABLES), "views": 1}  # made again, with the new comment
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(after.published_db_path) == expected
    with duckdb.connect(str(after.published_db_path), read_only=True) as con:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'teams'").fetchone()[0]
    assert "A new word." in comment


def test_an_empty_database_removed_from_under_the_process_is_made_again(tmp_path, fresh_tmp):
    with filled(tmp_path / "data").open_run("r2", T1) as run:
        full_build(run, tmp_path / "before")
        for made in publish_template._made.values():
            made.unlink(missing_ok=True)  # a /tmp cleaner, or a person tidying up
        ran = schema_statements(fresh_tmp)
        after = full_build(run, tmp_path / "after")
        assert ran == {"tables": list(TABLES), "views": 1}
    with duckdb.connect(str(after.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone()[0] == 1


def test_a_new_process_copies_the_file_an_earlier_one_made(tmp_path, fresh_tmp):
    with filled(tmp_path / "data").open_run("r2", T1) as run:
        full_build(run, tmp_path / "first")
        (made,) = publish_template._made.values()
        publish_template._made.clear()  # what a new process knows: nothing
        ran = schema_statements(fresh_tmp)
        full_build(run, tmp_path / "second")
        assert ran == {"tables": [], "views": 0}
    assert [p.name for p in publish_template.shared_folder().iterdir()] == [made.name]


def test_a_change_to_the_code_that_writes_it_makes_a_new_one(tmp_path, fresh_tmp):
    """Processes share the file, so its key holds the writing modules' source: a process running
    edited code never copies what older code made. Here one more writing module, edited between
    two processes (each starts with no digest taken)."""
    writer = tmp_path / "writer_module.py"
    writer.write_text("STATEMENTS = 1\n")
    fresh_tmp.setitem(sys.modules, "writer_module", types.SimpleNamespace(__file__=str(writer)))
    fresh_tmp.setattr(publish_module, "EMPTY_DATABASE_MADE_BY", (*publish_module.EMPTY_DATABASE_MADE_BY, "writer_module"))
    with filled(tmp_path / "data").open_run("r2", T1) as run:
        full_build(run, tmp_path / "before")
        publish_template._made.clear()
        publish_template.source_digest.cache_clear()  # a new process, same code: the same file is copied
        ran = schema_statements(fresh_tmp)
        full_build(run, tmp_path / "same-code")
        assert ran == {"tables": [], "views": 0}
        writer.write_text("STATEMENTS = 2\n")  # the code is edited
        publish_template._made.clear()
        publish_template.source_digest.cache_clear()
        ran = schema_statements(fresh_tmp)
        full_build(run, tmp_path / "edited-code")
        assert ran == {"tables": list(TABLES), "views": 1}
    assert len(list(publish_template.shared_folder().glob("*.duckdb"))) == 2


def test_a_shared_folder_anyone_else_could_write_is_never_copied_from(tmp_path, monkeypatch):
    """Someone else's folder in /tmp under our name (or a link to elsewhere) could hold any file:
    the full build is made statement by statement and still publishes."""
    with filled(tmp_path / "data", 2).open_run("r2", T1) as run:
        for planted in ("another owner", "writable by others", "a symlink"):
            temp = tmp_path / planted.replace(" ", "-")
            temp.mkdir()
            monkeypatch.setattr(publish_template.tempfile, "gettempdir", lambda temp=temp: str(temp))
            monkeypatch.setattr(publish_template, "_made", {})
            folder = publish_template.shared_folder()
            elsewhere = temp / "elsewhere"
            elsewhere.mkdir(mode=0o700)
            if planted == "another owner":
                os.chown(folder, 65534, 65534)
            elif planted == "writable by others":
                os.chmod(folder, 0o777)
            else:
                folder.rmdir()
                folder.symlink_to(elsewhere)
            ran = schema_statements(monkeypatch)
            built = full_build(run, temp / "built")
            assert ran == {"tables": list(TABLES), "views": 1}, planted  # as without a temporary folder (test below)
            assert teams(built) == 2
            assert publish_template._made == {}
            assert list(elsewhere.iterdir()) == [] and list(folder.iterdir()) == []


def test_a_damaged_shared_file_is_made_again(tmp_path, fresh_tmp):
    with filled(tmp_path / "data", 2).open_run("r2", T1) as run:
        full_build(run, tmp_path / "first")
        (made,) = publish_template._made.values()
        made.write_bytes(b"\x00" * 4096)  # a disk error, a truncated copy, a hand edit
        publish_template._made.clear()
        ran = schema_statements(fresh_tmp)
        built = full_build(run, tmp_path / "again")
        assert ran == {"tables": list(TABLES), "views": 1}
    assert teams(built) == 2
    with duckdb.connect(str(made), read_only=True) as con:  # a database again
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == len(TABLES)


KILLED_PROCESS = """
import os, sys
from pathlib import Path
from jofi_pipeline.warehouse import WarehouseStore, publish
from jofi_pipeline_tests.warehouse.conftest import T0
with WarehouseStore(Path(sys.argv[1]), "live").open_run("r1", T0) as run:
    other = WarehouseStore(Path(sys.argv[2]), "live")
    other.mode_dir.mkdir(parents=True)
    publish.publish(run.con, other.paths)
os._exit(0)  # as a process killed right after: no exit hook runs
"""


@pytest.mark.e2e
def test_processes_killed_after_a_full_build_leave_one_shared_file_behind(tmp_path):
    """A folder per process was removed at exit, so every killed process leaked one into /tmp."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    folder = temp / f"{publish_template.FOLDER_PREFIX}{os.getuid()}"
    inodes = []
    for n in (1, 2):
        subprocess.run(
            [sys.executable, "-c", KILLED_PROCESS, str(tmp_path / f"work{n}"), str(tmp_path / f"published{n}")],
            env={**os.environ, "TMPDIR": str(temp)}, check=True, timeout=120,
        )
        assert list(temp.iterdir()) == [folder]
        (made,) = folder.iterdir()
        assert made.suffix == ".duckdb"
        inodes.append(made.stat().st_ino)
        with duckdb.connect(str(tmp_path / f"published{n}" / "live" / "jofi.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == len(TABLES)
    assert inodes[0] == inodes[1]  # the second process copied the first one's file and made none


def test_without_a_writable_temporary_folder_a_full_build_still_publishes(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "tmp-is-a-file"
    not_a_folder.write_text("")  # as a TMPDIR nobody can make folders in
    monkeypatch.setattr(publish_template, "_made", {})
    monkeypatch.setattr(publish_template.tempfile, "gettempdir", lambda: str(not_a_folder))
    with filled(tmp_path / "data", 2).open_run("r2", T1) as run:
        ran = schema_statements(monkeypatch)
        built = full_build(run, tmp_path / "no-tmp")
        assert ran == {"tables": list(TABLES), "views": 1}  # built in place, statement by statement
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(built.published_db_path) == expected


def test_a_temporary_folder_duckdb_cannot_write_still_publishes(tmp_path, monkeypatch):
    """DuckDB, not the OS, reports a full or unwritable TMPDIR: its IOException while making the
    empty database there, and the full build goes on in place."""
    monkeypatch.setattr(publish_template, "_made", {})
    monkeypatch.setattr(publish_template.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with filled(tmp_path / "data", 2).open_run("r2", T1) as run:
        other = WarehouseStore(tmp_path / "full-tmp", "live")
        other.mode_dir.mkdir(parents=True)
        real = publish_module.build_empty_database

        def tmp_is_full(con, path):
            if str(path).startswith(str(publish_template.shared_folder())):
                raise duckdb.IOException("Could not write file: No space left on device")
            return real(con, path)

        monkeypatch.setattr(publish_module, "build_empty_database", tmp_is_full)
        publish_module.publish(run.con, other.paths)
        expected = statement_built(run, tmp_path / "by-statements.duckdb")
    assert contents(other.published_db_path) == expected
    assert publish_template._made == {}  # nothing half-made is ever copied


def teams(built: WarehouseStore) -> int:
    with duckdb.connect(str(built.published_db_path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM teams").fetchone()[0]


def storage_version(path) -> str:
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{path}' AS f (READ_ONLY)")
        return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'f'").fetchone()[0]
