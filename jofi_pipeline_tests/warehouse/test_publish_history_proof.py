"""The proof of a history patch (publish_history.apply_patch) on rows the merge should never write:
a patch that would leave the copy unlike the work table must not be called exact."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from jofi_pipeline.warehouse.publish_history import apply_patch
from jofi_pipeline.warehouse.schema import ensure_schema
from jofi_pipeline.warehouse.tables import TABLES

T0, T1, T2, T3 = (datetime(2026, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4))
HISTORY = TABLES["teams_history"]


def fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    rows, hashes = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} AS t").fetchone()
    return f"schema:{rows}:{hashes}"


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    con.executemany(
        f"INSERT INTO {table} (id, display_name, _valid_from, _valid_to, _is_current, _change) VALUES (?, ?, ?, ?, ?, 'insert')",
        rows,
    )


def test_a_version_with_a_null_key_and_a_duplicate_start_is_not_proven_exact():
    """The reviewer's case: a closed version whose id is NULL, and two versions of id 1 opened at
    the same instant. Matching NULL to nothing, the second closed version's extra match made the
    update's count come out right and the sums held, while the copy ended unlike the work table."""
    con = duckdb.connect()
    ensure_schema(con, specs=[HISTORY], comments=False)
    con.execute("ATTACH ':memory:' AS copy")
    ensure_schema(con, "copy", [HISTORY], comments=False)
    work = [(None, "N", T0, T2, False), (1, "X", T0, None, True), (1, "Y", T0, T3, False), (2, "Z", T1, None, True)]
    insert(con, "teams_history", work)
    insert(con, "copy.main.teams_history", [(i, name, start, None, True) for i, name, start, _, _ in work])
    previous, wanted = fingerprint(con, "copy.main.teams_history"), fingerprint(con, "teams_history")
    con.begin()
    exact = apply_patch(con, HISTORY, "copy", previous, wanted, since=T1)
    after = fingerprint(con, "copy.main.teams_history")
    con.rollback()
    assert exact is False  # refused: the caller copies the table whole
    assert after != wanted  # what the patch alone made of the copy: not the work table


def test_an_ordinary_night_is_proven_and_leaves_the_copy_equal_to_the_work_table():
    con = duckdb.connect()
    ensure_schema(con, specs=[HISTORY], comments=False)
    con.execute("ATTACH ':memory:' AS copy")
    ensure_schema(con, "copy", [HISTORY], comments=False)
    before = [(1, "A", T0, None, True), (2, "B", T0, None, True)]
    insert(con, "copy.main.teams_history", before)
    insert(con, "teams_history", [(1, "A", T0, T2, False), (1, "A2", T2, None, True), (2, "B", T0, None, True)])
    previous, wanted = fingerprint(con, "copy.main.teams_history"), fingerprint(con, "teams_history")
    con.begin()
    assert apply_patch(con, HISTORY, "copy", previous, wanted, since=T1) is True
    con.commit()
    assert fingerprint(con, "copy.main.teams_history") == wanted
