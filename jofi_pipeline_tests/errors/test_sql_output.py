"""Issue 12, item 5: `sql` shows DuckDB's whole message, takes --format in any case, prints DATE
values as dates, and has a way to show every column of a wide table."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jofi_pipeline.analyst import QueryError, run_query
from jofi_pipeline.query_formats import as_csv, as_json
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline_tests.errors.cli import base_env, invoke, one_error

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sql") / "data"
    with WarehouseStore(root, "live").open_run("seed", T0) as run:
        run.upsert("invitations", [
            {"id": 1, "mode": "live", "email": "a@example.com", "created_at": "2026-01-05T10:00:00Z"},
            {"id": 2**62, "mode": "live", "email": "b@example.com", "created_at": None},
        ], T0)
        run.publish()
    return root


def test_the_whole_duckdb_message_with_the_suggestion_and_the_caret(data: Path):
    with pytest.raises(QueryError) as caught:
        run_query("SELECT id FROM invitation", "live", data_dir=data)
    assert 'Did you mean "invitations"' in str(caught.value)
    with pytest.raises(QueryError) as caught:
        run_query("SELECT emial FROM invitations", "live", data_dir=data)
    message = str(caught.value)
    assert message.startswith("query failed: Binder Error:") and 'Candidate bindings: "email"' in message
    with pytest.raises(QueryError) as caught:
        run_query("SELECT id FROM invitations WHER id = 1", "live", data_dir=data)
    line, caret = str(caught.value).splitlines()[-2:]
    assert line == "LINE 1: SELECT id FROM invitations WHER id = 1" and set(caret.strip()) == {"^"}
    assert caret.index("^") == line.index("id = 1")  # the caret still points at the spot


def test_format_in_any_case_and_dates_as_dates(data: Path, monkeypatch, capsys):
    query = "SELECT id, CAST(created_at AS DATE) AS day, created_at FROM invitations ORDER BY id"
    result = invoke(["sql", query, "--format", "JSON"], base_env(data), monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0] == {"id": 1, "day": "2026-01-05", "created_at": "2026-01-05T10:00:00+00:00"}
    assert rows[1] == {"id": 2**62, "day": None, "created_at": None}  # every digit, NULL stays null
    as_csv_text = invoke(["sql", query, "-f", "Csv"], base_env(data), monkeypatch, capsys).stdout
    assert list(csv.reader(io.StringIO(as_csv_text)))[1:] == [
        ["1", "2026-01-05", "2026-01-05T10:00:00+00:00"], [str(2**62), "", ""]
    ]  # an integer column with a NULL stays integers
    assert one_error(invoke(["sql", query, "-f", "yaml"], base_env(data), monkeypatch, capsys))


def test_the_table_view_can_show_every_column(data: Path):
    narrow = run_query("SELECT * FROM invitations", "live", data_dir=data)
    wide = run_query("SELECT * FROM invitations", "live", data_dir=data, wide=True)
    columns = [c for (c,) in duckdb.connect(str(data / "live" / "jofi.duckdb"), read_only=True)
               .execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'invitations'").fetchall()]
    header = wide.splitlines()[1]
    assert all(column in header for column in columns)  # every column, by name
    assert not all(column in narrow.splitlines()[1] for column in columns)  # the default view elides some
    limited = run_query("SELECT * FROM range(100)", "live", data_dir=data, max_rows=10)
    assert "100 rows" in limited and " 99 " in limited and " 50 " not in limited


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.dates()), max_size=6))
def test_csv_and_json_round_trip_any_values(values):
    rows = [tuple(values)]
    columns = [f"c{i}" for i in range(len(values))]
    decoded = json.loads(as_json(columns, rows))[0]
    for column, value in zip(columns, values, strict=True):
        assert decoded[column] == (value.isoformat() if hasattr(value, "isoformat") else value)
    cells = list(csv.reader(io.StringIO(as_csv(columns, rows))))[1] if values else []
    for cell, value in zip(cells, values, strict=True):
        assert cell == ("" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value))
