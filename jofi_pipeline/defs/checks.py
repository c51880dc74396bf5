"""Asset checks over the published database, each with metadata a person can act on.

They read the published copy read-only, exactly what analysts see, after the sync published it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb

from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.defs.partitions import mode_partitions
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.webhooks.watch_log import WatchSummary, format_interval

CAPPED_LISTS = ("invitations", "test_takers", "career_navigation_profiles")

# (child table, column, parent table, parent column, description)
REFERENCES = [
    ("invitations", "test_taker_id", "test_takers", "id", "invitation -> test taker"),
    ("scorecards", "test_taker_id", "test_takers", "id", "scorecard -> test taker"),
    ("scorecards", "score_profile_short_name", "score_profiles", "short_name", "scorecard -> score profile"),
]

FRESHNESS_LIMIT = timedelta(hours=26)


def check_specs() -> list[dg.AssetCheckSpec]:
    specs: list[dg.AssetCheckSpec] = []
    for table in TABLES.values():
        key = asset_key(table.name)
        if table.key:
            specs.append(_spec("keys_unique_not_null", key, f"{', '.join(table.key)} is unique and never null"))
        specs.append(_spec("mode_pure", key, "every row's _mode is the partition's mode"))
    for child, column, parent, _, what in REFERENCES:
        specs.append(_spec(f"references_{parent}_{column}", asset_key(child), f"every {what} resolves"))
    for table in CAPPED_LISTS:
        specs.append(_spec("coverage", asset_key(table), "rows held vs the API's total_count"))
    specs.append(_spec("freshness", asset_key("sync_runs"), "a sync published within the last 26 hours"))
    specs.append(_spec("last_run_complete", asset_key("sync_runs"), "the last published run fetched every record it planned"))
    return specs


def _spec(name: str, key: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, partitions_def=mode_partitions)


def run_checks(
    con: duckdb.DuckDBPyConnection, mode: str, watcher: WatchSummary | None = None
) -> Iterator[dg.AssetCheckResult]:
    """`watcher`: the window watcher's record of this mode (webhooks/watch_log.py), when it ran."""
    for table in TABLES.values():
        key = asset_key(table.name)
        if table.key:
            not_null = tuple(c for c in table.key if c not in table.nullable_key)
            yield _unique_keys(con, key, table.name, table.key, not_null)
        yield _mode_pure(con, key, table.name, mode)
    for child, column, parent, parent_column, what in REFERENCES:
        yield _references(con, child, column, parent, parent_column, what)
    for table in CAPPED_LISTS:
        yield _coverage(con, table, mode, watcher)
    yield _freshness(con)
    yield _last_run_complete(con)


def _unique_keys(con, key, table: str, columns: tuple[str, ...], not_null: tuple[str, ...]) -> dg.AssetCheckResult:
    cols = ", ".join(f'"{c}"' for c in columns)
    nulls = " OR ".join(f'"{c}" IS NULL' for c in not_null) or "false"
    dupes = con.execute(
        f'SELECT count(*) FROM (SELECT {cols} FROM "{table}" GROUP BY ALL HAVING count(*) > 1)'
    ).fetchone()[0]
    null_rows = con.execute(f'SELECT count(*) FROM "{table}" WHERE {nulls}').fetchone()[0]
    passed = dupes == 0 and null_rows == 0
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="keys_unique_not_null",
        passed=passed,
        metadata={
            "duplicate_keys": dupes,
            "null_key_rows": null_rows,
            "what_to_do": "" if passed else f"Find them with: SELECT {cols}, count(*) FROM {table} GROUP BY ALL "
            "HAVING count(*) > 1; then report a bug: the merge must keep one row per key.",
        },
    )


def _mode_pure(con, key, table: str, mode: str) -> dg.AssetCheckResult:
    rows = con.execute(f'SELECT _mode, count(*) FROM "{table}" GROUP BY ALL').fetchall()
    foreign = {m: n for m, n in rows if m != mode}
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="mode_pure",
        passed=not foreign,
        metadata={
            "expected_mode": mode,
            "rows_of_other_modes": sum(foreign.values()),
            "what_to_do": "" if not foreign else f"Rows of {sorted(foreign)} are in the {mode} warehouse: stop the "
            "schedule, restore the previous published copy, and report it — modes must never mix.",
        },
    )


def _references(con, child: str, column: str, parent: str, parent_column: str, what: str) -> dg.AssetCheckResult:
    dangling = con.execute(
        f'SELECT count(*), list(DISTINCT c."{column}")[1:10] FROM "{child}" c '
        f'WHERE c."{column}" IS NOT NULL AND NOT EXISTS '
        f'(SELECT 1 FROM "{parent}" p WHERE p."{parent_column}" = c."{column}")'
    ).fetchone()
    count, sample = dangling[0], dangling[1] or []
    return dg.AssetCheckResult(
        asset_key=asset_key(child),
        check_name=f"references_{parent}_{column}",
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dangling_rows": count,
            "sample_values": str(sample),
            "what_to_do": "" if count == 0 else f"{count} {what} references point at {parent} rows the warehouse does "
            f"not hold. Run `jofi-pipeline sync --mode <mode> --full` to fetch them by id.",
        },
    )


IMPORT_KIND = {"invitations": "invitations", "test_takers": "test-takers", "career_navigation_profiles": "profiles"}


def _coverage(con, table: str, mode: str = "live", watcher: WatchSummary | None = None) -> dg.AssetCheckResult:
    rows = con.execute(
        "SELECT api_total_count, rows_held, run_id FROM sync_coverage WHERE entity = ? "
        "ORDER BY read_at DESC LIMIT 5",
        [table],
    ).fetchall()
    if not rows:
        return dg.AssetCheckResult(
            asset_key=asset_key(table), check_name="coverage", passed=False,
            severity=dg.AssetCheckSeverity.WARN, metadata={"what_to_do": "No sync has recorded coverage yet."},
        )
    total, held, run_id = rows[0]
    missing = max((total or 0) - held, 0)
    gaps = [max((t or 0) - h, 0) for t, h, _ in rows]  # newest first
    trend = "steady" if len(gaps) < 2 or gaps[0] == gaps[1] else ("growing" if gaps[0] > gaps[1] else "shrinking")
    hint = (
        f"Import their ids from your own records: `jofi-pipeline import-ids --kind {IMPORT_KIND[table]} FILE "
        f"--mode {mode}`; the next sync fetches them by id."
    )
    if mode == "live":
        hint += " To stop new gaps, run `jofi-pipeline webhooks` (live only) and turn on the jofi_webhook_events sensor."
    hint += (f" Without webhooks, `jofi-pipeline watch --mode {mode}` (or the jofi_window_watcher sensor) queues new"
             " ids while they are still listed.")
    watched = _watcher_metadata(watcher, table)
    watcher_said = watched.pop("watcher_said", "")
    return dg.AssetCheckResult(
        asset_key=asset_key(table),
        check_name="coverage",
        passed=missing == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "api_total_count": total,
            "rows_held": held,
            "missing": missing,
            "gap_by_run": ", ".join(str(g) for g in gaps) + " (newest first)",
            "gap_trend": trend,
            "run_id": run_id,
            **watched,
            "what_to_do": "" if missing == 0 else f"JOFI says {total} {table} exist but the warehouse holds {held}: "
            f"{missing} fell out of the API's capped window before a sync saw them (gap {trend}). "
            + watcher_said + hint,
        },
    )


def _watcher_metadata(watcher: WatchSummary | None, table: str) -> dict:
    """What the window watcher saw fall out of this list between two of its polls."""
    if watcher is None:
        return {}
    missed = watcher.missed.get(table, 0)
    out: dict = {"watcher_last_poll": watcher.last.polled_at if watcher.last else "", "watcher_missed": missed}
    gaps = [g for g in watcher.gaps if g.entity == table]
    if gaps:
        last = gaps[-1]
        out["watcher_said"] = (
            f"The window watcher saw {missed} of them fall out between two of its polls (last: {last.missed} "
            f"between {last.since[:19]} and {last.detected_at[:19]}) and shortened its interval to "
            f"{format_interval(last.interval_after_s or 0)}. "
        )
    return out


def _freshness(con) -> dg.AssetCheckResult:
    last = con.execute("SELECT max(finished_at) FROM sync_runs WHERE status IN ('succeeded', 'partial')").fetchone()[0]
    now = datetime.now(timezone.utc)
    age = (now - last) if last is not None else None
    passed = age is not None and age <= FRESHNESS_LIMIT
    return dg.AssetCheckResult(
        asset_key=asset_key("sync_runs"),
        check_name="freshness",
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "last_success": str(last),
            "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
            "what_to_do": "" if passed else "The nightly sync has not succeeded recently: check that the "
            "jofi_nightly_live schedule is on and look at the last failed run's error.",
        },
    )


def _last_run_complete(con) -> dg.AssetCheckResult:
    row = con.execute(
        "SELECT run_id, status, error FROM sync_runs WHERE status IN ('succeeded', 'partial') "
        "ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    run_id, status, error = row if row else (None, None, None)
    passed = status == "succeeded"
    return dg.AssetCheckResult(
        asset_key=asset_key("sync_runs"),
        check_name="last_run_complete",
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "run_id": run_id or "",
            "status": status or "none",
            "what_to_do": "" if passed else f"{error}. The next sync asks for these records again; if the same "
            "ones keep failing, look them up in JOFI's UI and report them to your JOFI representative.",
        },
    )
