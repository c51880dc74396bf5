"""Shared steps of the failure tests: a sync that gives up fast, and where each failure is recorded."""

from __future__ import annotations

from pathlib import Path

import duckdb

from jofi_pipeline.sync import SyncReport
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog
from jofi_pipeline_tests.e2e.helpers import sync

# One retry, milliseconds apart: a fault fails its route in well under a second, not after minutes.
FAST_RETRIES = {"max_retries": 1, "initial_backoff": 0.005, "max_backoff": 0.01, "healthcheck_retries": 0}


def fast_sync(sim, mode: str, data_dir: Path, monkeypatch=None, **options) -> SyncReport:
    """A bare sync (no Dagster) whose client retries once, at once (`monkeypatch`: unused, kept for callers)."""
    return sync(sim, mode, data_dir, **{**FAST_RETRIES, **options})


def run_errors(data_dir: Path, mode: str) -> dict[str, str | None]:
    """run_id -> error of every run in the working database (where a failed run's row lives)."""
    with duckdb.connect(str(ModePaths(data_dir, mode).work_db), read_only=True) as con:
        return dict(con.execute("SELECT run_id, error FROM sync_runs").fetchall())


def last_attempt(data_dir: Path, mode: str) -> Attempt | None:
    return AttemptLog(ModePaths(data_dir, mode).attempts).last(mode)
