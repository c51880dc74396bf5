"""Publish a changed `<table>_history` table as a patch of the previous version's copy.

History changes every night but only a little: a night opens versions of the records it saw
change and closes their previous ones, and nothing else. Copying the whole table into the new
published file (what the incremental publish does with any changed table) makes the publish grow
with all of history rather than with the night's changes. Instead, in the new file (a copy of
the previous version's), only the rows written since that version are replaced.

Which rows: the previous copy's latest instant (`max` of `_valid_from` / `_valid_to`) is when
it was last written; a row the work database wrote since was opened or closed after that instant
(versions, completions in place, delete markers all carry the instant of the run that wrote
them). Those rows are inserted, and the rows they replace go: the versions of the same keys the
copy holds as current (closing a version is the only change history makes to a row it keeps).
What that misses (a clock stepped back, or a run at the very same instant; a version reopened by
a run that read A, B, A of one record) cannot slip through: the patch must turn the previous
fingerprint into the work table's one (rows: previous - deleted + inserted; the sum of row
hashes likewise, the sums `publish.table_fingerprints` takes), or it is undone and the table
copied whole as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from jofi_pipeline.warehouse.merge import key_match
from jofi_pipeline.warehouse.schema import ident, qualified
from jofi_pipeline.warehouse.tables import TableSpec

# Past this share of the previous rows a patch does more work than the whole copy it replaces.
MAX_WRITTEN_SHARE = 0.5


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

    Returns False, having written nothing (its transaction rolled back), when a patch cannot be shown to give exactly the work
    table (the caller then copies it whole).
    """
    con.begin()  # undone unless the sums prove the patch exact
    try:
        exact = apply_patch(con, spec, catalog, previous, wanted)
    except BaseException:
        con.rollback()
        raise
    if not exact:
        con.rollback()
        return False
    con.commit()
    return True


def apply_patch(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, catalog: str, previous: str | None, wanted: str
) -> bool | None:
    """The patch of `patch_history`, inside the caller's transaction, which it never ends.

    True: applied and proven exact. None: not attempted, nothing written (no usable fingerprint,
    another schema, an empty or never-written copy). False: written but not proven exact: the
    caller must roll the transaction back.
    """
    before, after = Fingerprint.parse(previous), Fingerprint.parse(wanted)
    if spec.kind != "history" or before is None or after is None or before.schema != after.schema or not before.rows:
        return None
    target, work = qualified(spec.name, catalog), ident(spec.name)
    key = spec.key[:-1]  # the versioned table's key; the last part is _valid_from
    (since,) = con.execute(f"SELECT max(greatest(_valid_from, coalesce(_valid_to, _valid_from))) FROM {target}").fetchall()[0]
    if since is None:
        return None
    # Written since the copy: versions opened (or completed in place), delete markers, and the
    # versions they closed, which the copy holds as current (`_valid_to` NULL): those go.
    written = "(r._valid_from > $since OR r._valid_to > $since)"
    columns = ", ".join(f"{ident(c.name)} := {ident(c.name)}" for c in spec.all_columns)
    gone = con.execute(
        f"""DELETE FROM {target} AS c WHERE c._valid_to IS NULL AND EXISTS (
            SELECT 1 FROM {work} AS r WHERE {written} AND {key_match(spec, 'r', 'c', key)}) RETURNING hash(c)""",
        {"since": since},
    ).fetchall()
    added = con.execute(
        f"INSERT INTO {target} BY NAME SELECT r.* FROM {work} AS r WHERE {written} "
        f"RETURNING hash(struct_pack({columns}))",  # hash(t) of the fingerprints: the row, columns in order
        {"since": since},
    ).fetchall()
    return (
        len(added) <= before.rows * MAX_WRITTEN_SHARE
        and before.rows - len(gone) + len(added) == after.rows
        and before.hash_sum - sum(h for (h,) in gone) + sum(h for (h,) in added) == after.hash_sum
    )
