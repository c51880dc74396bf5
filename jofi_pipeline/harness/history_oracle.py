"""What every history test checks, written apart from the product's own SQL check so the two can
disagree: the chains of versions are clean, and the current versions are the current tables."""

from __future__ import annotations

from collections import defaultdict

import duckdb

from jofi_pipeline.warehouse.tables import HISTORY, TABLES

HISTORY_ONLY = ("_valid_from", "_valid_to", "_is_current", "_change", "_row_hash", "_sync_run_id")
# What chain_problems reads of a version besides its key: a chain's shape, not its content.
CHAIN_COLUMNS = ("_valid_from", "_valid_to", "_is_current", "_change", "_row_hash")


def chains(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...] | None = None) -> dict[tuple, list[dict]]:
    """key -> its versions of `table`'s history, oldest first, as dicts: of every column, or of
    the key and `columns` only (a version of a wide table as a dict of every column costs more
    CPU than the query)."""
    hist = HISTORY[table]
    width = len(hist.key) - 1
    names = list(hist.column_names) if columns is None else [*hist.key[:width], *columns]
    rows = con.execute(f'SELECT {", ".join(chr(34) + n + chr(34) for n in names)} FROM "{hist.name}"').fetchall()
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        version = dict(zip(names, row, strict=True))
        by_key[tuple(version[k] for k in hist.key[:width])].append(version)
    for versions in by_key.values():
        versions.sort(key=lambda v: (v["_valid_from"], v["_valid_to"] is None, v["_valid_to"]))
    return by_key


def chain_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Per history table and key: gaps, overlaps, current flags, delete markers, repeated content."""
    problems = []
    for table in HISTORY:
        for key, versions in chains(con, table, CHAIN_COLUMNS).items():
            where = f"{table}{key}"
            for v, after in zip(versions, versions[1:] + [None], strict=True):
                if v["_is_current"] != (v["_valid_to"] is None):
                    problems.append(f"{where}: _is_current disagrees with _valid_to")
                if v["_change"] == "delete":
                    if v["_valid_to"] != v["_valid_from"]:
                        problems.append(f"{where}: a delete marker that is not a closed zero-length version")
                    continue
                if after is None:
                    if not v["_is_current"]:
                        problems.append(f"{where}: the last version is neither current nor a delete")
                    continue
                if v["_valid_to"] != after["_valid_from"]:
                    problems.append(f"{where}: gap or overlap between {v['_valid_to']} and {after['_valid_from']}")
                if after["_change"] != "delete" and after["_row_hash"] == v["_row_hash"]:
                    problems.append(f"{where}: two neighbouring versions with the same content (a duplicated version)")
            current = [v for v in versions if v["_is_current"]]
            if len(current) > 1 or (not current and versions[-1]["_change"] != "delete"):
                problems.append(f"{where}: {len(current)} current versions")
    return problems


def disagreements(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Where the current versions and the current tables differ (a version lost, or one too many)."""
    problems = []
    for table, hist in HISTORY.items():
        spec = TABLES[table]
        shared = [n for n in hist.column_names if n not in HISTORY_ONLY]
        columns = ", ".join(f'CAST("{n}" AS VARCHAR)' for n in shared)
        live = "_deleted_at IS NULL" if "_deleted_at" in spec.column_names else "true"
        table_rows = set(con.execute(f'SELECT {columns} FROM "{table}" WHERE {live}').fetchall())
        current = con.execute(f'SELECT {columns} FROM "{hist.name}" WHERE _is_current').fetchall()
        if len(current) != len(set(current)):
            problems.append(f"{hist.name}: a current version repeated")
        if table_rows != set(current):
            problems.append(
                f"{hist.name}: {len(table_rows - set(current))} {table} rows without their current version, "
                f"{len(set(current) - table_rows)} current versions not in {table}"
            )
        if "_deleted_at" in spec.column_names:
            gone = con.execute(
                f'SELECT count(*) FROM "{table}" t WHERE _deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{hist.name}" h '
                f"WHERE {' AND '.join(f'h.{k} IS NOT DISTINCT FROM t.{k}' for k in spec.key)} AND h._change = 'delete' "
                "AND h._valid_from = t._deleted_at)"
            ).fetchone()[0]
            if gone:
                problems.append(f"{hist.name}: {gone} deleted {table} rows without their delete marker")
    return problems


def versions(con: duckdb.DuckDBPyConnection) -> set[tuple]:
    """Every version ever opened, as (table, key..., _valid_from, _row_hash): to show none is lost."""
    seen = set()
    for table, hist in HISTORY.items():
        key = ", ".join(f'CAST("{k}" AS VARCHAR)' for k in hist.key)
        seen |= {(table, *row) for row in con.execute(f'SELECT {key}, _row_hash, _change FROM "{hist.name}"').fetchall()}
    return seen
