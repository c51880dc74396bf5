"""Set-wise SQL that keeps the `<table>_history` tables: one row per observed version.

Called by the store inside the same transaction as the merge of the current table, so a crash
never leaves the two disagreeing. The rules, for every key:
- a version whose `_row_hash` equals the current one adds nothing;
- a changed one closes the current version and opens the new one at the same instant (`at`), so
  the versions of a key are contiguous and at most one is current;
- a record found gone closes its version at `at` and leaves a zero-length `delete` marker there
  (holding the last known values), so none is current until it is seen again (`insert`).

Like merge.py, each function takes an open connection inside the caller's transaction and runs a
handful of statements over staged Arrow tables, never one per row.
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from jofi_pipeline.json_codec import loads
from jofi_pipeline.warehouse.flatten import ARROW_TYPES, arrow_string, content_hash
from jofi_pipeline.warehouse.merge import key_match, parent_match, staged
from jofi_pipeline.warehouse.records import MergeCounts
from jofi_pipeline.warehouse.schema import ident, literal
from jofi_pipeline.warehouse.tables import HISTORY, HISTORY_COLUMNS, TABLES, TableSpec

log = logging.getLogger(__name__)

_HISTORY_NAMES = frozenset(c.name for c in HISTORY_COLUMNS)


def _source_key(hist: TableSpec) -> tuple[str, ...]:
    return hist.key[:-1]  # the versioned table's key; the last part is _valid_from


def _content_columns(hist: TableSpec) -> list[str]:
    """What a version holds besides the history columns: the table's columns, `_mode`, `_raw`."""
    return [n for n in hist.column_names if n not in _HISTORY_NAMES]


def _insert_versions(hist: TableSpec) -> str:
    """`INSERT INTO <history> (<content columns>, <history columns>)`: what every version written starts with."""
    names = ", ".join(ident(n) for n in _content_columns(hist))
    return f"INSERT INTO {ident(hist.name)} ({names}, _valid_from, _valid_to, _is_current, _change, _row_hash, _sync_run_id)"


def child_hash_sql(hist: TableSpec, alias: str) -> str:
    """md5 of a child row's typed columns (child tables have no raw JSON): its `_row_hash`."""
    fields = ", ".join(f"{ident(c.name)} := {alias}.{ident(c.name)}" for c in hist.columns)
    return f"md5(CAST(to_json(struct_pack({fields})) AS VARCHAR))"


def record_versions(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, at: datetime, run_id: str
) -> MergeCounts:
    """Open a version for each staged row whose content differs from its key's current version.

    `rows` holds the table's columns and `_row_hash`, at most one row per key. A run is one
    observation: when the current version was opened by this same run (a list item showed part of
    a change, the by-id object the rest), it is completed in place rather than followed by a
    second version that only a half-read record ever had. Returns inserted = versions opened,
    updated = versions closed or completed.

    One join reads each key's current version; what follows touches only the keys that changed.
    """
    if rows.num_rows == 0:
        return MergeCounts()
    with staged(con, rows) as s:
        rows = con.sql(f"SELECT s.*, {CURRENT_COLUMNS} FROM {s} AS s {_join_current(hist, 's')}").to_arrow_table()
    return _versions_of_compared(con, hist, rows, at, run_id)


# The columns `_join_current` adds: the key's current version's hash and run (null: none).
CURRENT_COLUMNS = "c._row_hash AS _current_hash, c._sync_run_id AS _current_run"


def _join_current(hist: TableSpec, alias: str) -> str:
    """LEFT JOIN of rows `alias` with their key's current version (its hash and run only)."""
    key = _source_key(hist)
    return (f"LEFT JOIN (SELECT {', '.join(ident(n) for n in key)}, _row_hash, _sync_run_id FROM {ident(hist.name)} "
            f"WHERE _is_current) AS c ON {key_match(hist, 'c', alias, key)}")


def _versions_of_compared(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, at: datetime, run_id: str
) -> MergeCounts:
    """`record_versions` once each row carries its key's current hash and run (`_join_current`)."""
    counts = MergeCounts()
    if rows.num_rows == 0:
        return counts
    key = _source_key(hist)
    current, hashes = rows["_current_hash"], rows["_row_hash"]
    known = pc.is_valid(current)
    differs = pc.and_(known, pc.fill_null(pc.not_equal(current, hashes), True))
    same_run = pc.fill_null(pc.equal(rows["_current_run"], arrow_string(run_id)), False)
    rewrite = pc.and_(differs, same_run)
    close = pc.and_(differs, pc.invert(same_run))
    opened = pc.or_(pc.invert(known), close)
    if pc.any(rewrite).as_py():
        counts.updated += _rewrite(con, hist, rows.filter(rewrite))
    if pc.any(close).as_py():
        counts.updated += _close(con, hist, rows.filter(close).select(list(key)), at)
    if pc.any(opened).as_py():
        new = rows.filter(opened)
        change = pc.if_else(pc.is_valid(new["_current_hash"]), arrow_string("update"), arrow_string("insert"))
        counts.inserted = _open(con, hist, new.append_column("_change", change), at, run_id)
    return counts


def tables_with_current_versions_of(con: duckdb.DuckDBPyConnection, run_id: str) -> frozenset[str]:
    """The history tables holding a current version opened by run `run_id` (a run id used again).

    One statement for every history table, asked once per run: a statement per table cost its
    fixed price thirteen times a nightly."""
    asked = " UNION ALL ".join(
        f"(SELECT {literal(hist.name)} FROM {ident(hist.name)} WHERE _sync_run_id = $run AND _is_current LIMIT 1)"
        for hist in HISTORY.values()
    )
    # fetched to the end: an unfinished result blocks the next register
    return frozenset(name for (name,) in con.execute(asked, {"run": run_id}).fetchall())


def record_changed_versions(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, at: datetime, run_id: str
) -> MergeCounts:
    """`record_versions` for rows the caller knows about: `rows` also holds `_change`, 'update'
    where the key has a current version (its content now differs), 'insert' where it has none,
    and no current version of these keys was opened by this run (nothing to complete in place).

    Two statements over one staged table, no read-back: close the current versions whose hash
    differs, open a version for each key left without one. The keys closed must be exactly those
    said 'update' (a key closed always opens again); if the caller was wrong about any, the
    versions just opened are labelled again from what was closed, so the result is the same as
    `record_versions`'.

    A batch said all 'insert' (new records: a first sync, a night's new test takers) skips the
    close (one join of the batch with the history table, and an UPDATE): only the opening is left.
    A key that holds a current version all the same is not opened by it, and goes the long way
    (`record_versions`) after."""
    counts = MergeCounts()
    if rows.num_rows == 0:
        return counts
    key = _source_key(hist)
    columns = _content_columns(hist)
    names = ", ".join(ident(n) for n in columns)
    table = ident(hist.name)
    inserts_only = not pc.any(pc.equal(rows["_change"], arrow_string("update"))).as_py()
    with staged(con, rows) as s:
        closed = [] if inserts_only else con.execute(
            f"""UPDATE {table} AS h SET _valid_to = $at, _is_current = false FROM {s} AS s
            WHERE {key_match(hist, 'h', 's', key)} AND h._is_current AND h._row_hash IS DISTINCT FROM s._row_hash
            RETURNING {', '.join('h.' + ident(n) for n in key)}""",
            {"at": at},
        ).fetchall()
        opened = con.execute(
            f"""{_insert_versions(hist)}
            SELECT {names}, $at, NULL, true, s._change, s._row_hash, $run FROM {s} AS s
            WHERE NOT EXISTS (SELECT 1 FROM {table} AS h WHERE {key_match(hist, 'h', 's', key)} AND h._is_current)
            RETURNING {', '.join(ident(n) for n in key)}, _change""",
            {"at": at, "run": run_id},
        ).fetchall()
    width = len(key)
    if inserts_only and len(opened) < rows.num_rows:
        return _the_long_way_for_the_rest(con, hist, rows, {row[:width] for row in opened}, at, run_id)
    closed_keys = set(closed)
    mislabelled = [row[:width] for row in opened if (row[:width] in closed_keys) != (row[width] == "update")]
    if mislabelled:
        _relabel(con, hist, closed_keys, [row[:width] for row in opened], at, run_id)
    counts.updated, counts.inserted = len(closed), len(opened)
    return counts


def _the_long_way_for_the_rest(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, opened: set[tuple], at: datetime, run_id: str
) -> MergeCounts:
    """Rows said 'insert' whose key held a current version all the same: compared with it (record_versions)."""
    keys = zip(*(rows[n].to_pylist() for n in _source_key(hist)), strict=True)
    rest = rows.filter(pa.array([k not in opened for k in keys], type=pa.bool_())).drop_columns(["_change"])
    counts = record_versions(con, hist, rest, at, run_id)
    counts.inserted += len(opened)
    return counts


def _relabel(con: duckdb.DuckDBPyConnection, hist: TableSpec, closed: set[tuple], opened: list[tuple], at: datetime, run_id: str) -> None:
    """The versions just opened: 'update' where a current version was closed, else 'insert'."""
    key = _source_key(hist)
    labels = pa.table(
        {n: pa.array([k[i] for k in opened], type=ARROW_TYPES[hist.column(n).type]) for i, n in enumerate(key)}
        | {"_change": pa.array(["update" if k in closed else "insert" for k in opened], type=pa.string())}
    )
    with staged(con, labels) as s:
        con.execute(
            f"""UPDATE {ident(hist.name)} AS h SET _change = s._change FROM {s} AS s
            WHERE {key_match(hist, 'h', 's', key)} AND h._is_current AND h._valid_from = $at AND h._sync_run_id = $run""",
            {"at": at, "run": run_id},
        )


def _rewrite(con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table) -> int:
    """Complete versions this run opened; one that came back to the version it closed is undone
    (the run saw A, B, A: the record never changed as far as history can tell)."""
    columns = _content_columns(hist)
    key = _source_key(hist)
    table = ident(hist.name)
    with staged(con, rows) as s:
        rewritten = con.execute(
            f"""UPDATE {table} AS h SET {', '.join(f'{ident(n)} = s.{ident(n)}' for n in columns)},
            _row_hash = s._row_hash FROM {s} AS s WHERE {key_match(hist, 'h', 's', key)} AND h._is_current"""
        ).fetchone()[0]
        reverted = con.sql(
            f"""SELECT {', '.join('c.' + ident(n) for n in columns)}, c._valid_from AS _reverted_from FROM {table} AS c
            JOIN {table} AS p ON {key_match(hist, 'p', 'c', key)} AND p._valid_to = c._valid_from
                 AND p._change <> 'delete' AND p._row_hash = c._row_hash
            WHERE c._is_current AND EXISTS (SELECT 1 FROM {s} AS s WHERE {key_match(hist, 'c', 's', key)})"""
        ).to_arrow_table()
    if reverted.num_rows:
        with staged(con, reverted) as r:
            con.execute(f"DELETE FROM {table} AS h USING {r} AS r WHERE {key_match(hist, 'h', 'r', key)} AND h._valid_from = r._reverted_from")
            # the reopened version takes what was just read (same content; the envelope of the
            # last response, as the table's row has it)
            con.execute(
                f"""UPDATE {table} AS h SET {', '.join(f'{ident(n)} = r.{ident(n)}' for n in columns)},
                _valid_to = NULL, _is_current = true FROM {r} AS r
                WHERE {key_match(hist, 'h', 'r', key)} AND h._valid_to = r._reverted_from AND h._change <> 'delete'"""
            )
    return rewritten


def _close(con: duckdb.DuckDBPyConnection, hist: TableSpec, keys: pa.Table, at: datetime) -> int:
    with staged(con, keys) as k:
        return con.execute(
            f"""UPDATE {ident(hist.name)} AS h SET _valid_to = $at, _is_current = false FROM {k} AS k
            WHERE {key_match(hist, 'h', 'k', _source_key(hist))} AND h._is_current""",
            {"at": at},
        ).fetchone()[0]


def _open(con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, at: datetime, run_id: str) -> int:
    columns = _content_columns(hist)
    names = ", ".join(ident(n) for n in columns)
    with staged(con, rows) as s:
        return con.execute(
            f"""{_insert_versions(hist)}
            SELECT {names}, $at, NULL, true, _change, _row_hash, $run FROM {s}""",
            {"at": at, "run": run_id},
        ).fetchone()[0]


def record_deletes(con: duckdb.DuckDBPyConnection, hist: TableSpec, keys: pa.Table, at: datetime, run_id: str) -> int:
    """Close the current version of each key in `keys` with a `delete` marker; returns markers written.

    Keys without a current version (unknown, or already deleted) are left alone.
    """
    if keys.num_rows == 0:
        return 0
    table, key = ident(hist.name), _source_key(hist)
    columns = _content_columns(hist)
    with staged(con, keys) as k:
        written = con.execute(
            f"""{_insert_versions(hist)}
            SELECT {', '.join('h.' + ident(n) for n in columns)}, $at, $at, false, 'delete', h._row_hash, $run
            FROM {table} AS h WHERE h._is_current AND EXISTS (SELECT 1 FROM {k} AS k WHERE {key_match(hist, 'h', 'k', key)})""",
            {"at": at, "run": run_id},
        ).fetchone()[0]
        con.execute(
            f"""UPDATE {table} AS h SET _valid_to = $at, _is_current = false FROM {k} AS k
            WHERE {key_match(hist, 'h', 'k', key)} AND h._is_current""",
            {"at": at},
        )
    return written


def open_first_child_versions(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, parents: pa.Table, at: datetime, run_id: str
) -> int:
    """First versions of the child rows of `parents`, which now are exactly `rows`, when none of
    these parents has a current child version (a first sync, new scorecards): one INSERT that
    hashes in SQL, nothing read back. `record_children` would compare each row with a current
    version and find none, at four statements and two read-backs a batch (the largest share of a
    first sync's history). Returns the versions opened: all rows, or none when some child of these
    parents holds a current version (the caller then takes `record_children`, which compares
    them and closes those no longer listed)."""
    if rows.num_rows == 0:
        return 0
    table = ident(hist.name)
    columns = _content_columns(hist)
    with staged(con, rows) as s, staged(con, parents) as p:
        return con.execute(
            f"""{_insert_versions(hist)}
            SELECT {', '.join('s.' + ident(n) for n in columns)}, $at, NULL, true, 'insert', {child_hash_sql(hist, 's')}, $run
            FROM {s} AS s WHERE NOT EXISTS (SELECT 1 FROM {table} AS h JOIN {p} AS p ON {parent_match(TABLES[hist.versions_of], 'h', 'p')} WHERE h._is_current)""",
            {"at": at, "run": run_id},
        ).fetchone()[0]


def record_children(
    con: duckdb.DuckDBPyConnection, hist: TableSpec, rows: pa.Table, parents: pa.Table, at: datetime, run_id: str
) -> MergeCounts:
    """Versions of the child rows of `parents`, which now are exactly `rows`.

    A child row whose content differs from its current version opens a version; one the parent
    no longer lists gets a delete marker. Rows equal to their current version cost one join.
    """
    spec = TABLES[hist.versions_of]
    key = _source_key(hist)
    table = ident(hist.name)
    with staged(con, rows) as s, staged(con, parents) as p:
        # each row with its current version's hash and run: those that differ go on (record_versions
        # without its own join of the history table)
        changed = con.sql(
            f"""WITH s AS (SELECT *, {child_hash_sql(hist, s)} AS _row_hash FROM {s})
            SELECT s.*, {CURRENT_COLUMNS} FROM s {_join_current(hist, 's')}
            WHERE c._row_hash IS DISTINCT FROM s._row_hash"""
        ).to_arrow_table()
        # rows the parents no longer list: their delete markers written by the statement that finds them
        gone = con.execute(
            f"""{_insert_versions(hist)}
            SELECT {', '.join('h.' + ident(n) for n in _content_columns(hist))}, $at, $at, false, 'delete', h._row_hash, $run
            FROM {table} AS h WHERE h._is_current AND EXISTS (SELECT 1 FROM {p} AS p WHERE {parent_match(spec, 'h', 'p')})
            AND NOT EXISTS (SELECT 1 FROM {s} AS s WHERE {key_match(hist, 'h', 's', key)})
            RETURNING {', '.join(ident(n) for n in key)}""",
            {"at": at, "run": run_id},
        ).fetchall()
    counts = _versions_of_compared(con, hist, changed, at, run_id)
    if gone:
        keys = pa.table({n: pa.array([k[i] for k in gone], type=ARROW_TYPES[hist.column(n).type]) for i, n in enumerate(key)})
        with staged(con, keys) as k:
            con.execute(
                f"""UPDATE {table} AS h SET _valid_to = $at, _is_current = false FROM {k} AS k
                WHERE {key_match(hist, 'h', 'k', key)} AND h._is_current""",
                {"at": at},
            )
    counts.removed = len(gone)
    return counts


def start_missing_from_current_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Begin the history of every versioned table that has rows but no history yet.

    A warehouse built before history existed: each row becomes one version, valid from the last
    time a sync wrote it (`_last_synced_at`: when its content was last found changed; a warehouse
    older than that rule bumped it on every re-read, so it may be later than the change); a row marked
    deleted also gets its delete marker at `_deleted_at`. Returns rows started per history table.
    """
    started: dict[str, int] = {}
    for table in _tables_to_start(con):
        hist = HISTORY[table]
        started[hist.name] = _start(con, TABLES[table], hist)
    return started


def _tables_to_start(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Versioned tables holding rows while their history holds none: one statement for all (every
    run asks, and history has started on all but a warehouse's first run since it was kept)."""
    asked = " UNION ALL ".join(
        f"(SELECT {literal(table)} FROM {ident(table)} WHERE NOT EXISTS (SELECT 1 FROM {ident(hist.name)}) LIMIT 1)"
        for table, hist in HISTORY.items()
    )
    missing = {table for (table,) in con.execute(asked).fetchall()}
    return [table for table in HISTORY if table in missing]


def _start(con: duckdb.DuckDBPyConnection, spec: TableSpec, hist: TableSpec) -> int:
    columns = _content_columns(hist)
    key = _source_key(hist)
    # No run saw these versions first that history knows of: _sync_run_id stays null (so the run
    # that starts history also opens new versions, rather than completing these in place).
    deleted = "t._deleted_at" if "_deleted_at" in spec.column_names else "CAST(NULL AS TIMESTAMPTZ)"
    since = f"least(t._last_synced_at, coalesce({deleted}, t._last_synced_at))"
    if "_raw" in spec.column_names:
        hashes = _raw_hashes(con, spec)
        source = f"(SELECT t.*, h._row_hash FROM {ident(spec.name)} AS t JOIN {{h}} AS h ON {key_match(spec, 't', 'h', key)})"
    else:
        hashes = None
        source = f"(SELECT t.*, {child_hash_sql(hist, 't')} AS _row_hash FROM {ident(spec.name)} AS t)"
    insert = _insert_versions(hist)
    select = ", ".join(f"t.{ident(n)}" for n in columns)

    def run(source_sql: str) -> int:
        written = con.execute(
            f"""{insert} SELECT {select}, {since}, {deleted}, {deleted} IS NULL, 'insert', t._row_hash, NULL
            FROM {source_sql} AS t"""
        ).fetchone()[0]
        con.execute(
            f"""{insert} SELECT {select}, {deleted}, {deleted}, false, 'delete', t._row_hash, NULL
            FROM {source_sql} AS t WHERE {deleted} IS NOT NULL"""
        )
        return written

    if hashes is None:
        return run(source)
    with staged(con, hashes) as h:
        return run(source.format(h=h))


def _raw_hashes(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> pa.Table:
    """key -> content_hash(_raw) for every row: the same hash the store writes for new versions."""
    key = ", ".join(f"t.{ident(n)}" for n in spec.key)
    rows = con.execute(f"SELECT {key}, t._raw::VARCHAR FROM {ident(spec.name)} AS t").fetchall()
    width = len(spec.key)
    columns = {n: [r[i] for r in rows] for i, n in enumerate(spec.key)}
    columns["_row_hash"] = [content_hash(loads(r[width]) if r[width] else {}) for r in rows]
    schema = pa.schema([pa.field(n, ARROW_TYPES[spec.column(n).type]) for n in spec.key] + [pa.field("_row_hash", pa.string())])
    return pa.table(columns, schema=schema)
