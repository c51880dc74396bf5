"""Which tables each table and view is built from: the story the Dagster asset graph tells.

Derived, never listed by hand, so a new table or view joins the graph where it belongs:
- an entity table is read from the JOFI API; a derived one (scorecards, job-fit reports) is
  fetched for the records the registry names in `fetched_for` (one scorecard per test taker and
  score profile);
- a child table comes from its `parent` (scorecard_scores from scorecards);
- a history table keeps the versions of the table it is `versions_of`;
- fetch_state says why each derived object was fetched, fetch_outcomes which records fetched by id
  did not come back; sync_runs logs each run's requests and
  outcome; sync_coverage compares, per run, the API's counts of the capped lists with the rows held;
- a view reads the tables its SQL names (DuckDB parses it).
"""

from __future__ import annotations

import duckdb

from jofi_pipeline.entities import CAPPED_LISTS, DERIVED, ENTITIES, INBOX_ENTITIES
from jofi_pipeline.warehouse.tables import FETCH_OUTCOMES, FETCH_STATE, SYNC_COVERAGE, SYNC_RUNS, TABLES, TableSpec
from jofi_pipeline.warehouse.views import VIEWS, ViewSpec


def reads_api(spec: TableSpec) -> bool:
    """True when the table's rows are answers of the JOFI API (entity tables and the run log)."""
    return spec.kind == "entity" or spec.name == SYNC_RUNS.name


def upstream_tables(spec: TableSpec) -> tuple[str, ...]:
    """The tables `spec` is built from (none for a table read straight from the API)."""
    if spec.versions_of:
        return (spec.versions_of,)
    if spec.parent:
        return (spec.parent,)
    if spec.kind == "entity":
        return ENTITIES[spec.name].fetched_for if spec.name in ENTITIES else ()
    if spec.name == FETCH_STATE.name:
        return DERIVED
    if spec.name == FETCH_OUTCOMES.name:
        return (*INBOX_ENTITIES, *DERIVED)
    if spec.name == SYNC_COVERAGE.name:
        return (SYNC_RUNS.name, *CAPPED_LISTS)
    return ()


def view_tables(view: ViewSpec) -> tuple[str, ...]:
    """The warehouse tables a view's SQL reads, in the specs' order."""
    named = duckdb.get_table_names(view.sql)
    return tuple(name for name in TABLES if name in named)


def graph() -> dict[str, tuple[str, ...]]:
    """Every table and view -> what it is built from, for tests and documentation."""
    return {**{name: upstream_tables(spec) for name, spec in TABLES.items()}, **{v.name: view_tables(v) for v in VIEWS}}
