"""The work database's schema step: what an up-to-date database needs is nothing; what changed is applied."""

from __future__ import annotations

import dataclasses

import duckdb

from jofi_pipeline.warehouse.schema import ensure_schema
from jofi_pipeline.warehouse.tables import TABLES


def comments(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    rows = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() WHERE schema_name = 'main'").fetchall()
    return {(t, c): comment for t, c, comment in rows}


def test_an_up_to_date_database_gets_no_ddl_at_all(tmp_path):
    path = tmp_path / "work.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        con.execute("CHECKPOINT")
        before = comments(con)
    size_before = path.stat().st_size
    with duckdb.connect(str(path)) as con:
        con.execute("SET checkpoint_threshold = '1TB'")  # keep what the step writes in the WAL, where it shows
        ensure_schema(con)
        assert comments(con) == before
    # Re-applying the ~400 comments rewrote catalog entries: a WAL of them, and a larger file after.
    wal = tmp_path / "work.duckdb.wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert path.stat().st_size == size_before


def test_a_comment_or_column_the_spec_changed_is_applied_and_the_rest_kept(tmp_path, monkeypatch):
    path = tmp_path / "work.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        con.execute("ALTER TABLE users DROP COLUMN email")  # a table an older spec created
    users = TABLES["users"]
    changed = dataclasses.replace(users.columns[0], comment="A comment the spec changed.")
    monkeypatch.setitem(TABLES, "users", dataclasses.replace(users, columns=(changed, *users.columns[1:])))
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        held = comments(con)
        table_comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'users'").fetchone()[0]
    assert held[("users", changed.name)] == "A comment the spec changed."
    assert held[("users", "email")] == users.column("email").comment
    assert table_comment.startswith(users.comment)
    assert all(held[("users", c.name)] == c.comment for c in users.all_columns[1:])
