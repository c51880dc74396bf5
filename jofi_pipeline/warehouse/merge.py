"""Set-wise SQL that merges staged Arrow tables into the work database.

Every function takes an open connection inside the caller's transaction, registers its Arrow
input under a private name, and runs a handful of statements (MERGE / DELETE ... USING) — never
one statement per row.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from jofi_pipeline.warehouse.flatten import ARROW_TYPES, arrow_string
from jofi_pipeline.warehouse.records import MergeCounts
from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import TableSpec

_names = itertools.count()


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, table: pa.Table) -> Iterator[str]:
    """Expose an Arrow table to SQL under a unique name for the duration of the block."""
    name = f"_staged_{next(_names)}"
    con.register(name, table)
    try:
        yield name
    except BaseException:
        # A statement that failed (out of memory, say) aborted the caller's transaction, and DuckDB
        # refuses even the unregister in it ("Current transaction is aborted"): that error would
        # stand in for the one that says what happened. The name is unique, so one left registered
        # on a connection the failed run then closes is harmless.
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def key_match(
    spec: TableSpec, left: str, right: str, columns: tuple[str, ...] | None = None, *, nulls_match: bool = False
) -> str:
    """Join condition on the key; nullable key parts (every part, with `nulls_match`) compare with
    IS NOT DISTINCT FROM."""
    parts = []
    for name in columns or spec.key:
        op = "IS NOT DISTINCT FROM" if nulls_match or name in spec.nullable_key else "="
        parts.append(f"{left}.{ident(name)} {op} {right}.{ident(name)}")
    return " AND ".join(parts)


def parent_match(spec: TableSpec, child: str, parent: str) -> str:
    """Join condition of a child table's rows with its parents' keys (never null)."""
    return " AND ".join(f"{child}.{ident(n)} = {parent}.{ident(n)}" for n in spec.parent_columns)


def _insert_clause(spec: TableSpec) -> str:
    names = [ident(n) for n in spec.column_names]
    return f"INSERT ({', '.join(names)}) VALUES ({', '.join('s.' + n for n in names)})"


def _data_columns(spec: TableSpec) -> list[str]:
    return [c.name for c in spec.columns if c.name not in spec.key]


BUMP = "_last_synced_at = greatest(t._last_synced_at, s._last_synced_at)"


def stored_raw(con: duckdb.DuckDBPyConnection, spec: TableSpec, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[str, Any]]:
    """key -> (raw JSON text, _deleted_at) for the keys already stored."""
    if not keys:
        return {}
    key_table = pa.table({name: [k[i] for k in keys] for i, name in enumerate(spec.key)},
                         schema=pa.schema([pa.field(n, _arrow_key_type(spec, n)) for n in spec.key]))
    with staged(con, key_table) as s:
        cols = ", ".join(f"t.{ident(n)}" for n in spec.key)
        rows = con.execute(
            f"SELECT {cols}, t._raw::VARCHAR, t._deleted_at FROM {ident(spec.name)} t JOIN {s} k ON {key_match(spec, 't', 'k')}"
        ).fetchall()
    width = len(spec.key)
    return {tuple(row[:width]): (row[width], row[width + 1]) for row in rows}


def existing_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The keys among `keys` that the table already holds."""
    if not keys:
        return set()
    key_table = pa.table({name: [k[i] for k in keys] for i, name in enumerate(spec.key)},
                         schema=pa.schema([pa.field(n, _arrow_key_type(spec, n)) for n in spec.key]))
    with staged(con, key_table) as s:
        cols = ", ".join(f"t.{ident(n)}" for n in spec.key)
        return set(con.execute(f"SELECT {cols} FROM {ident(spec.name)} t JOIN {s} k ON {key_match(spec, 't', 'k')}").fetchall())


def _arrow_key_type(spec: TableSpec, name: str) -> pa.DataType:
    return ARROW_TYPES[spec.column(name).type]


def merge_entities(con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: pa.Table) -> None:
    """Apply staged entity rows whose `_action` says insert or update.

    update rewrites typed columns + raw, bumps `_last_synced_at` and clears `_deleted_at`. A record
    found unchanged is not staged at all and its row stays exactly as it is, so a night that
    changes nothing writes nothing; `_first_synced_at` is never touched after insert.
    """
    if rows.num_rows == 0:
        return
    if pc.all(pc.equal(rows["_action"], arrow_string("insert"))).as_py():
        # New records only (a first sync, a night's new scorecards): what the MERGE would do, at
        # about half its cost (no update machinery).
        names = ", ".join(ident(n) for n in spec.column_names)
        with staged(con, rows) as s:
            con.execute(
                f"""INSERT INTO {ident(spec.name)} ({names}) SELECT {names} FROM {s} AS s
                WHERE NOT EXISTS (SELECT 1 FROM {ident(spec.name)} AS t WHERE {key_match(spec, 't', 's')})"""
            )
        return
    sets = ", ".join(f"{ident(n)} = s.{ident(n)}" for n in _data_columns(spec) + ["_raw"])
    with staged(con, rows) as s:
        con.execute(
            f"""MERGE INTO {ident(spec.name)} AS t USING {s} AS s ON {key_match(spec, 't', 's')}
            WHEN MATCHED AND s._action = 'update' THEN UPDATE SET {sets}, {BUMP}, _deleted_at = NULL
            WHEN NOT MATCHED THEN {_insert_clause(spec)}"""
        )


def replace_children(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: pa.Table, parents: pa.Table
) -> tuple[MergeCounts, list[tuple[Any, ...]]]:
    """Make the children of `parents` exactly `rows`, keeping `_first_synced_at` of kept rows.

    Rows are matched on the child key; a kept row whose typed columns differ counts as updated
    (and gets the new `_last_synced_at`), a kept row that does not is left as it is; rows of these
    parents that are no longer listed are removed. Also returns the keys of the
    updated rows (a child key starts with its parent's key), so a run can count each one once.
    """
    data = _data_columns(spec)
    differs = " OR ".join(f"t.{ident(n)} IS DISTINCT FROM s.{ident(n)}" for n in data) or "false"
    counts = MergeCounts()
    with staged(con, rows) as s, staged(con, parents) as p:
        counts.removed = con.execute(
            f"""DELETE FROM {ident(spec.name)} AS c USING {p} AS p WHERE {parent_match(spec, 'c', 'p')}
            AND NOT EXISTS (SELECT 1 FROM {s} AS s WHERE {key_match(spec, 'c', 's')})"""
        ).fetchone()[0]
        if rows.num_rows == 0:
            return counts, []
        inserted, updated, unchanged = con.execute(
            f"""SELECT count(*) FILTER (WHERE t._hit IS NULL),
                       count(*) FILTER (WHERE t._hit AND ({differs})),
                       count(*) FILTER (WHERE t._hit AND NOT ({differs}))
            FROM {s} AS s LEFT JOIN (SELECT *, true AS _hit FROM {ident(spec.name)}) AS t
            ON {key_match(spec, 't', 's')}"""
        ).fetchone()
        counts.inserted, counts.updated, counts.unchanged = inserted, updated, unchanged
        changed: list[tuple[Any, ...]] = []
        if updated:
            ids = ", ".join(f"s.{ident(n)}" for n in spec.key)
            changed = con.execute(
                f"SELECT {ids} FROM {s} AS s JOIN {ident(spec.name)} AS t ON {key_match(spec, 't', 's')} WHERE {differs}"
            ).fetchall()
        sets = ", ".join(f"{ident(n)} = s.{ident(n)}" for n in data)
        con.execute(
            f"""MERGE INTO {ident(spec.name)} AS t USING {s} AS s ON {key_match(spec, 't', 's')}
            WHEN MATCHED AND ({differs}) THEN UPDATE SET {sets}, {BUMP}
            WHEN NOT MATCHED THEN {_insert_clause(spec)}"""
        )
    return counts, changed


def add_children_of_new_parents(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: pa.Table, parents: pa.Table
) -> tuple[MergeCounts, list[tuple[Any, ...]]]:
    """`replace_children` for parents the caller has just inserted: they have no children yet, so
    the rows are added in one statement, with nothing to delete or compare (three statements, each
    reading the child table, in `replace_children`).

    The one statement adds nothing if any child of these parents is there all the same (a row
    written by hand, or left by a bug): then the batch takes `replace_children`, as any other."""
    if rows.num_rows == 0:
        return replace_children(con, spec, rows, parents)
    names = ", ".join(ident(n) for n in spec.column_names)
    with staged(con, rows) as s, staged(con, parents) as p:
        added = con.execute(
            f"""INSERT INTO {ident(spec.name)} ({names}) SELECT {names} FROM {s}
            WHERE NOT EXISTS (SELECT 1 FROM {ident(spec.name)} AS c JOIN {p} AS p ON {parent_match(spec, 'c', 'p')})"""
        ).fetchone()[0]
    if added != rows.num_rows:
        return replace_children(con, spec, rows, parents)
    return MergeCounts(inserted=added), []


def replace_rows(con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: pa.Table) -> None:
    """Upsert rows by key, overwriting every data column (used for the run log)."""
    if rows.num_rows == 0:
        return
    sets = ", ".join(f"{ident(n)} = s.{ident(n)}" for n in _data_columns(spec))
    with staged(con, rows) as s:
        con.execute(
            f"""MERGE INTO {ident(spec.name)} AS t USING {s} AS s ON {key_match(spec, 't', 's')}
            WHEN MATCHED THEN UPDATE SET {sets}, {BUMP}
            WHEN NOT MATCHED THEN {_insert_clause(spec)}"""
        )


def mark_deleted(con: duckdb.DuckDBPyConnection, spec: TableSpec, keys: pa.Table, deleted_at: Any) -> list[tuple[Any, ...]]:
    """Set `_deleted_at` on known, not yet deleted keys; returns the keys it marked."""
    cols = ", ".join(f"t.{ident(n)}" for n in spec.key)
    with staged(con, keys) as k:
        return con.execute(
            f"""UPDATE {ident(spec.name)} AS t SET _deleted_at = ? FROM {k} AS k
            WHERE {key_match(spec, 't', 'k')} AND t._deleted_at IS NULL RETURNING {cols}""",
            [deleted_at],
        ).fetchall()
