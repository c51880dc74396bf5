"""Publish a changed `<table>_history` table as a patch of the previous version's copy.

History changes every night but only a little: a night opens versions of the records it saw
change and closes their previous ones, and nothing else. Copying the whole table into the new
published file (what the incremental publish does with any changed table) makes the publish grow
with all of history rather than with the night's changes. Instead, in the new file (a copy of
the previous version's), only the rows written since that version are written.

Which rows: the previous copy's latest instant (`max` of `_valid_from` / `_valid_to`) is when
it was last written (its fingerprint in the manifest records it; `publish.previous_version`
builds on a copy only while its file is the one that publish wrote); a row the work database
wrote since was opened or closed after that instant (versions, completions in place, delete
markers all carry the instant of the run that wrote them). The rows opened since are appended;
the rows closed since, which the copy holds as current, get their end (`_valid_to`,
`_is_current`) in place: closing a version is the only change history makes to a row it keeps. Nothing is deleted, so the copy never carries dead rows and is
never copied whole to shed them, and the night's work is its own versions, not the table's.
What that misses (a clock stepped back, or a run at the very same instant; a version reopened by
a run that read A, B, A of one record) cannot slip through: the patch must turn the previous
fingerprint into the work table's one (rows: previous + appended; the sum of row hashes: previous
- the closed rows as they were + as they are + the appended ones, the sums
`publish.table_fingerprints` takes; the closed rows' hashes are read from the work table, and the
update must close exactly as many rows of the copy), or it is undone and the table copied whole as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import duckdb

from jofi_pipeline.warehouse.merge import key_match
from jofi_pipeline.warehouse.schema import ident, literal, qualified
from jofi_pipeline.warehouse.tables import TableSpec


@dataclass(frozen=True)
class Fingerprint:
    """The parts of `<schema digest>:<rows>:<sum of row hashes>[:<latest instant>]` (the last for
    history tables: microseconds since the epoch, empty for an empty table)."""

    schema: str
    rows: int
    hash_sum: int
    latest: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> Fingerprint | None:
        parts = (text or "").split(":")
        try:
            if len(parts) == 3:
                return cls(parts[0], int(parts[1]), int(parts[2]))
            if len(parts) == 4:
                return cls(parts[0], int(parts[1]), int(parts[2]), int(parts[3]) if parts[3] else None)
        except ValueError:
            pass
        return None

    def latest_instant(self) -> datetime | None:
        return instant_of(self.latest)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_of(epoch_us: int | None) -> datetime | None:
    """Microseconds since the epoch (what `latest_instant_sql` gives) as an instant; None stays None."""
    return EPOCH + timedelta(microseconds=epoch_us) if epoch_us is not None else None


def latest_instant_sql(alias: str) -> str:
    """A history table's latest instant (when it was last written), in microseconds since the epoch."""
    return f"epoch_us(max(greatest({alias}._valid_from, coalesce({alias}._valid_to, {alias}._valid_from))))"


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
    con: duckdb.DuckDBPyConnection, spec: TableSpec, catalog: str, previous: str | None, wanted: str,
    since: datetime | None | Literal["read"] = "read",
) -> bool | None:
    """The patch of `patch_history`, inside the caller's transaction, which it never ends.

    `since`: the copy's latest instant when the caller knows it (its fingerprint records it, or
    `latest_instants` read it); "read": read it here.
    True: applied and proven exact. None: not attempted, nothing written (no usable fingerprint,
    another schema, an empty or never-written copy). False: written but not proven exact: the
    caller must roll the transaction back.
    """
    before, after = Fingerprint.parse(previous), Fingerprint.parse(wanted)
    if spec.kind != "history" or before is None or after is None or before.schema != after.schema or not before.rows:
        return None
    target, work = qualified(spec.name, catalog), ident(spec.name)
    key = spec.key[:-1]  # the versioned table's key; the last part is _valid_from
    if since == "read":
        since = latest_instants(con, [spec], catalog)[spec.name]
    if since is None:
        return None
    # Written since the copy: versions opened (or completed in place) and delete markers are
    # inserted; the versions the night closed, which the copy holds as current, get their end
    # (`_valid_to`, `_is_current`: the only change history makes to a row it keeps) in place. No
    # row is deleted, so the copy carries no dead rows and is never copied whole to shed them.
    columns = [c.name for c in spec.all_columns]
    as_current = {"_valid_to": "CAST(NULL AS TIMESTAMPTZ)", "_is_current": "true"}
    closed_since = "r._valid_from <= $since AND r._valid_to > $since"
    # The closed versions' hashes as the copy holds them (current) and as they are now, read from
    # the work table: the copy's row each one closes must hold the same content, which the sums
    # prove (a copy row that differs leaves the previous sum off by its hash). So the update
    # below reads only the key and the end of the copy's rows, never all their columns.
    was, now, closing = con.execute(
        f"SELECT coalesce(sum({row_hash(columns, as_current, 'r')}), 0), coalesce(sum({row_hash(columns, alias='r')}), 0), "
        f"count(*) FROM {work} AS r WHERE {closed_since}",
        {"since": since},
    ).fetchone()
    ends = ", ".join([*(f"r.{ident(n)}" for n in key), "r._valid_from", "r._valid_to", "r._is_current"])
    (closed,) = con.execute(
        f"""UPDATE {target} AS c SET _valid_to = r._valid_to, _is_current = r._is_current
        FROM (SELECT {ends} FROM {work} AS r WHERE {closed_since}) AS r
        WHERE c._valid_to IS NULL AND c._is_current AND r._valid_from = c._valid_from
        AND {key_match(spec, 'r', 'c', key, nulls_match=True)}""",
        {"since": since},
    ).fetchone()
    added = con.execute(
        f"INSERT INTO {target} BY NAME SELECT r.* FROM {work} AS r WHERE r._valid_from > $since "
        f"RETURNING {row_hash(columns)}",
        {"since": since},
    ).fetchall()
    # However much of the table the night wrote: a proven patch is kept (the work is done; undoing
    # it to copy the table whole cost the night's other patches too, rolled back with it).
    # `closed` counts join matches (DuckDB's UPDATE ... FROM), not distinct rows: a closed version
    # matching two rows of the copy counts two, so `closed == closing` holds only when each closed
    # version found exactly its own row. Every key part matches NULL to NULL here, so a version
    # whose key holds a NULL the merge should never have let in still finds its row.
    return (
        closed == closing
        and before.rows + len(added) == after.rows
        and before.hash_sum - int(was) + int(now) + sum(h for (h,) in added) == after.hash_sum
    )


def latest_instants(con: duckdb.DuckDBPyConnection, specs: list[TableSpec], catalog: str) -> dict[str, datetime | None]:
    """Per history table, the latest instant `catalog`'s copy holds (None when empty): one
    statement for all, for copies whose fingerprint does not record it."""
    if not specs:
        return {}
    asked = " UNION ALL ".join(
        f"SELECT {literal(spec.name)}, {latest_instant_sql('t')} FROM {qualified(spec.name, catalog)} AS t" for spec in specs
    )
    latest = dict(con.execute(asked).fetchall())
    return {spec.name: instant_of(latest[spec.name]) for spec in specs}


def row_hash(columns: list[str], replaced: dict[str, str] | None = None, alias: str | None = None) -> str:
    """`hash(t)` of the fingerprints (the row, columns in order), some columns replaced by SQL values."""
    replaced, prefix = replaced or {}, f"{alias}." if alias else ""
    return f"hash(struct_pack({', '.join(f'{ident(n)} := {replaced.get(n, prefix + ident(n))}' for n in columns)}))"
