"""Reading the history tables: one `<table>_as_of(moment)` table macro per versioned table
(the funnel_timings view is in views.py). Created in the published database only (publish.create_views).

A macro binds its table names when it is called, in the caller's current database: open the
published file itself (`duckdb jofi.duckdb`), or `USE <alias>` after `ATTACH ... AS <alias>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import HISTORY, TABLES

PARAMETER = "moment"


@dataclass(frozen=True)
class MacroSpec:
    """A table macro: `name(moment)` returns rows; `sql` is its SELECT."""

    name: str
    comment: str
    sql: str
    parameter: str = PARAMETER


def valid_at(alias: str) -> str:
    """The version of `alias` that was current at the macro's moment (a delete marker never is)."""
    moment = f"CAST({PARAMETER} AS TIMESTAMPTZ)"
    return f"{alias}._valid_from <= {moment} AND ({alias}._valid_to IS NULL OR {moment} < {alias}._valid_to)"


def as_of_macro(table: str) -> MacroSpec:
    hist = HISTORY[table]
    spec = TABLES[table]
    where = valid_at("h")
    if spec.parent is not None:  # a child exists at a moment only while its parent does
        parent_hist = HISTORY[spec.parent]
        match = " AND ".join(
            f"p.{ident(parent_key)} = h.{ident(child_column)}"
            for parent_key, child_column in zip(TABLES[spec.parent].key, spec.parent_columns, strict=True)
        )
        where += f" AND EXISTS (SELECT 1 FROM {ident(parent_hist.name)} AS p WHERE {match} AND {valid_at('p')})"
    return MacroSpec(
        f"{table}_as_of",
        f"{table} as it was at a moment: {table}_as_of(TIMESTAMPTZ '2026-03-31 23:59:59+00') returns the version of "
        f"each row that was current then (from {hist.name}; rows not yet seen or already deleted are absent). "
        "A TIMESTAMP without a zone is read in the session's TimeZone.",
        f"SELECT h.* FROM {ident(hist.name)} AS h WHERE {where}",
    )


AS_OF_MACROS: tuple[MacroSpec, ...] = tuple(as_of_macro(table) for table in HISTORY)
