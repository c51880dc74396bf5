"""Plan: a query's rows parked in a temp table and handed out page by page."""

from __future__ import annotations

import duckdb
import pytest

from jofi_pipeline.sync.plan import Plan

ROWS = "SELECT * FROM (VALUES (5, 'new'), (3, 'new'), (9, 'changed'), (1, 'new'), (7, 'changed')) t(id, reason) ORDER BY id"


def test_rows_come_page_by_page_in_the_querys_order():
    con = duckdb.connect()
    with Plan(con, ROWS, {}, page_size=2) as plan:
        assert plan.size == 5 and plan.columns == ("id", "reason")
        assert [row[0] for row in plan] == [1, 3, 5, 7, 9]
        assert list(plan.records())[0] == {"id": 1, "reason": "new"}
        assert plan.reasons() == "new 3, changed 2"


def test_only_the_parameters_the_query_names_are_bound():
    con = duckdb.connect()
    with Plan(con, "SELECT unnest($ids::BIGINT[]) AS id", {"ids": [2, 4], "full": True, "profiles": []}) as plan:
        assert [row for row in plan] == [(2,), (4,)]


def test_close_drops_the_temporary_table():
    con = duckdb.connect()
    plan = Plan(con, ROWS, {})
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    plan.close()
    after = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    assert len(tables - after) == 1 and not after & (tables - after)


def test_an_empty_plan_yields_nothing():
    con = duckdb.connect()
    with Plan(con, "SELECT 1 AS id WHERE false", {}) as plan:
        assert plan.size == 0 and list(plan) == []


def test_a_bad_query_fails_when_planned_not_later():
    with pytest.raises(duckdb.Error):
        Plan(duckdb.connect(), "SELECT * FROM no_such_table", {})
