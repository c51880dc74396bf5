"""The key rule counts exactly: keys held more than once, and rows lacking a part of the key that
may not be missing (a nullable part, such as a top-level score's parent, may be)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jofi_pipeline.warehouse.integrity import keys_unique
from jofi_pipeline.warehouse.schema import ensure_schema
from jofi_pipeline.warehouse.tables import TABLES

SCORE_KEY = TABLES["scorecard_scores"].key  # (test_taker_id, score_profile_short_name, section, score_id, parent_score_id)
small = st.one_of(st.none(), st.integers(1, 3))
score_rows = st.lists(
    st.tuples(small, st.one_of(st.none(), st.sampled_from(["a", "b"])), st.sampled_from(["x", None]), small, small),
    max_size=25,
)


def expected(rows: list[tuple], key: tuple[str, ...], nullable: tuple[str, ...]) -> tuple[int, int]:
    """What the rule must say, counted in Python: SQL groups NULL keys together, as here."""
    dupes = sum(1 for n in Counter(rows).values() if n > 1)
    required = [i for i, column in enumerate(key) if column not in nullable]
    nulls = sum(1 for row in rows if any(row[i] is None for i in required))
    return dupes, nulls


@pytest.fixture(scope="module")
def scores_table() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory database with the scorecard_scores table, emptied by each example (a new
    database and its DDL for each of the 60 examples was most of the test's time)."""
    with duckdb.connect() as con:
        ensure_schema(con, specs=[TABLES["scorecard_scores"]], comments=False)
        yield con


@settings(max_examples=60, deadline=None)
@given(rows=score_rows)
def test_the_key_rule_counts_duplicate_keys_and_rows_without_a_key_exactly(scores_table, rows):
    spec, con = TABLES["scorecard_scores"], scores_table
    con.execute("DELETE FROM scorecard_scores")
    columns = ", ".join(f'"{c}"' for c in SCORE_KEY)
    if rows:
        con.executemany(f"INSERT INTO scorecard_scores ({columns}) VALUES (?, ?, ?, ?, ?)", rows)
    assert con.execute("SELECT count(*) FROM scorecard_scores").fetchone() == (len(rows),)  # only this example's rows
    finding = keys_unique(con, "scorecard_scores")
    dupes, nulls = expected(rows, SCORE_KEY, spec.nullable_key)
    assert (finding.metadata["duplicate_keys"], finding.metadata["null_key_rows"]) == (dupes, nulls)
    assert finding.passed == (dupes == 0 and nulls == 0)


def test_a_key_held_twice_and_a_row_without_a_key_are_named_in_the_refusal():
    with duckdb.connect() as con:
        ensure_schema(con, specs=[TABLES["teams"]], comments=False)
        con.execute("INSERT INTO teams (id) VALUES (1), (1), (2), (NULL), (NULL), (NULL)")
        finding = keys_unique(con, "teams")
    assert not finding.passed
    assert finding.metadata == {"duplicate_keys": 2, "null_key_rows": 3}  # key 1, and the NULL key group
    assert finding.problem == "2 keys (id) held twice and 3 rows without a key"
