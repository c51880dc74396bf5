"""The `fetch_outcomes` rows: records a GET by id did not bring back, written set-wise.

A 404 for a record the warehouse never held is remembered as `not_found` with the inputs it was
asked for; a record whose every attempt failed (after retries) is remembered as `failing`, with
how many runs in a row it failed for the same inputs. The sync leaves out of its plans what is
not found or quarantined (QUARANTINE_AFTER_RUNS) with unchanged inputs, and forgets a row when
the record is fetched. Rows are written in the caller's transaction (store.RunWriter).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.warehouse import flatten, merge
from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import FETCH_OUTCOMES, QUARANTINE_AFTER_RUNS

NOT_FOUND = "not_found"
FAILING = "failing"
_TABLE = ident(FETCH_OUTCOMES.name)


@dataclass(frozen=True, slots=True)
class Missed:
    """One record a run asked for and did not get: its key as text, its inputs, what JOFI said."""

    record_key: str
    inputs: str
    error: str


@dataclass(frozen=True, slots=True)
class Remembered:
    """A `fetch_outcomes` row as the sync and `status` read it."""

    entity: str
    record_key: str
    inputs: str | None
    outcome: str
    failed_runs: int
    error: str | None
    last_at: datetime | None

    @property
    def quarantined(self) -> bool:
        return self.outcome == FAILING and self.failed_runs >= QUARANTINE_AFTER_RUNS

    @property
    def skipped(self) -> bool:
        """Left out of plans while its inputs stay the same."""
        return self.outcome == NOT_FOUND or self.quarantined


def record(
    con: duckdb.DuckDBPyConnection, mode: str, run_id: str, entity: str, outcome: str, missed: Sequence[Missed],
    now: datetime,
) -> dict[str, int]:
    """Upsert one row per missed record; returns record_key -> failed_runs after this run.

    A `failing` record counts one more failed run only when its inputs are the ones it failed
    for before and the run is a new one (a record asked twice in a run counts once).
    """
    if not missed:
        return {}
    latest = {m.record_key: m for m in missed}
    keys = list(latest)
    before = {
        key: (inputs, failed_runs, last_run)
        for key, inputs, failed_runs, last_run in con.execute(
            f"SELECT record_key, inputs, failed_runs, run_id FROM {_TABLE} WHERE entity = ? AND record_key IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [entity, keys],
        ).fetchall()
    }
    rows, counts = [], {}
    system = {"_mode": mode, "_first_synced_at": now, "_last_synced_at": now}
    for key, m in latest.items():
        inputs, failed_runs, last_run = before.get(key, (None, 0, None))
        same = inputs == m.inputs
        if outcome == NOT_FOUND:
            runs = 0
        elif same and last_run == run_id:
            runs = failed_runs
        else:
            runs = (failed_runs if same else 0) + 1
        counts[key] = runs
        first_at = now if not same else None
        rows.append({
            "entity": entity, "record_key": key, "inputs": m.inputs, "outcome": outcome, "failed_runs": runs,
            "error": settings.redact_keys(m.error), "first_at": first_at, "last_at": now,
            "run_id": run_id, **system,
        })
    table = flatten.arrow_table(FETCH_OUTCOMES, rows)
    with merge.staged(con, table) as staged:
        con.execute(
            f"""
            MERGE INTO {_TABLE} t USING {staged} s ON t.entity = s.entity AND t.record_key = s.record_key
            WHEN MATCHED THEN UPDATE SET inputs = s.inputs, outcome = s.outcome, failed_runs = s.failed_runs,
                error = s.error, first_at = coalesce(s.first_at, t.first_at), last_at = s.last_at,
                run_id = s.run_id, _last_synced_at = s._last_synced_at
            WHEN NOT MATCHED THEN INSERT BY NAME
            """
        )
    return counts


def forget(con: duckdb.DuckDBPyConnection, entity: str, record_keys: Iterable[str]) -> int:
    """Drop the rows of records that were fetched after all; returns how many went."""
    keys = list(record_keys)
    if not keys:
        return 0
    return con.execute(
        f"DELETE FROM {_TABLE} WHERE entity = ? AND record_key IN (SELECT unnest(?::VARCHAR[]))", [entity, keys]
    ).fetchone()[0]


def remembered(con: duckdb.DuckDBPyConnection, entity: str | None = None) -> list[Remembered]:
    """Every row (of `entity`), quarantined first, then newest first."""
    where, params = ("WHERE entity = ?", [entity]) if entity else ("", [])
    rows = con.execute(
        f"SELECT entity, record_key, inputs, outcome, failed_runs, error, last_at FROM {_TABLE} {where} "
        "ORDER BY outcome, failed_runs DESC, last_at DESC, entity, record_key",
        params,
    ).fetchall()
    return [Remembered(*row) for row in rows]
