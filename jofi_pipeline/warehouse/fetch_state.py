"""The `fetch_state` rows of one batch, written set-wise inside the caller's transaction.

Kept next to the data they describe: a batch of scorecards and the record of having fetched them
commit together, so a crash can never leave "fetched" without the data or the data without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

import duckdb

from jofi_pipeline.warehouse import flatten, merge
from jofi_pipeline.warehouse.records import FetchRecord
from jofi_pipeline.warehouse.tables import FETCH_STATE


def record(con: duckdb.DuckDBPyConnection, mode: str, run_id: str, fetched: Sequence[FetchRecord], now: datetime) -> int:
    """Upsert one row per (kind, test taker, score profile); returns how many rows were written."""
    if not fetched:
        return 0
    system = {"_mode": mode, "_first_synced_at": now, "_last_synced_at": now, "run_id": run_id}
    latest = {tuple(getattr(f, k) for k in FETCH_STATE.key): f for f in fetched}  # MERGE needs unique keys
    rows = [asdict(f) | system for f in latest.values()]
    merge.replace_rows(con, FETCH_STATE, flatten.arrow_table(FETCH_STATE, rows))
    return len(rows)
