"""Publish a changed `<table>_history` table as a patch of the previous version's copy.

History changes every night but only a little: a night opens versions of the records it saw
change and closes their previous ones, and nothing else. Copying the whole table into the new
published file (what the incremental publish does with any changed table) makes the publish grow
with all of history rather than with the night's changes. Instead, in the new file (a copy of
the previous version's), only the keys touched since that version are replaced: every row of
those keys is deleted and the work database's rows of those keys are inserted.

Which keys: the previous copy's latest instant (`max` of `_valid_from` / `_valid_to`) is when it
was last written; a key the work database has changed since has a row opened or closed after
that instant (versions, completions in place, delete markers all carry the instant of the run
that wrote them). What that misses (a clock stepped back or a run at the very same instant; a
version reopened by a run that read A, B, A of one record) cannot slip through: before anything is written, the patch must
turn the previous fingerprint into the work table's one (rows: previous - deleted + inserted;
sum of row hashes likewise, the sums `publish.table_fingerprints` takes), or the table is
copied whole as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from jofi_pipeline.warehouse.merge import key_match, staged
from jofi_pipeline.warehouse.schema import ident, qualified
from jofi_pipeline.warehouse.tables import TableSpec

# Past this share of the previous rows a patch does more work than the whole copy it replaces.
MAX_TOUCHED_SHARE = 0.5


@dataclass(frozen=True)
class Fingerprint:
    """The parts of `<schema digest>:<rows>:<sum of row hashes>`."""

    schema: str
    rows: int
    hash_sum: int

    @classmethod
    def parse(cls, text: str | None) -> Fingerprint | None:
        try:
            schema, rows, hash_sum = (text or "").split(":")
            return cls(schema, int(rows), int(hash_sum))
        except ValueError:
            return None


def patch_history(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, catalog: str, previous: str | None, wanted: str
) -> bool:
    """Bring `catalog`'s copy of history table `spec` from fingerprint `previous` to `wanted`.

    Returns False, having written nothing, when a patch cannot be shown to give exactly the work
    table (the caller then copies it whole).
    """
    before, after = Fingerprint.parse(previous), Fingerprint.parse(wanted)
    if spec.kind != "history" or before is None or after is None or before.schema != after.schema or not before.rows:
        return False
    target, work = qualified(spec.name, catalog), ident(spec.name)
    key = spec.key[:-1]  # the versioned table's key; the last part is _valid_from
    touched = con.sql(
        f"""WITH since AS (SELECT max(greatest(_valid_from, coalesce(_valid_to, _valid_from))) AS at FROM {target})
        SELECT DISTINCT {', '.join('w.' + ident(n) for n in key)} FROM {work} AS w, since
        WHERE w._valid_from > since.at OR w._valid_to > since.at"""
    ).to_arrow_table()
    if touched.num_rows > before.rows * MAX_TOUCHED_SHARE:
        return False
    with staged(con, touched) as keys:
        of_touched = f"EXISTS (SELECT 1 FROM {keys} AS k WHERE {key_match(spec, 'r', 'k', key)})"
        gone_rows, gone_sum = con.execute(
            f"SELECT count(*), coalesce(sum(hash(r)), 0)::VARCHAR FROM {target} AS r WHERE {of_touched}"
        ).fetchall()[0]
        new_rows, new_sum = con.execute(
            f"SELECT count(*), coalesce(sum(hash(r)), 0)::VARCHAR FROM {work} AS r WHERE {of_touched}"
        ).fetchall()[0]
        exact = (
            before.rows - gone_rows + new_rows == after.rows
            and before.hash_sum - int(gone_sum) + int(new_sum) == after.hash_sum
        )
        if not exact:
            return False
        # Results fetched to the end: an unfinished one makes the next `register` fail (DuckDB 2).
        con.execute(f"DELETE FROM {target} AS r WHERE {of_touched}").fetchall()
        con.execute(f"INSERT INTO {target} BY NAME SELECT r.* FROM {work} AS r WHERE {of_touched}").fetchall()
    return True
