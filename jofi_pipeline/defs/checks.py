"""Asset checks over the published database, each with metadata a person can act on.

They read the published copy read-only, exactly what analysts see, after the sync published it.
The queries are the warehouse's (PublishedReader); here is only what each result means and what
a person should do about it.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs import freshness
from jofi_pipeline.defs.partitions import mode_partitions, per_mode
from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.entities import CAPPED_LISTS, ENTITIES
from jofi_pipeline.warehouse import CoverageHistory, PublishedReader
from jofi_pipeline.warehouse.published import RunSummary
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.webhooks.watch_log import WatchSummary, format_interval

# (child table, column, parent table, parent column, description)
REFERENCES = [
    ("invitations", "test_taker_id", "test_takers", "id", "invitation -> test taker"),
    ("scorecards", "test_taker_id", "test_takers", "id", "scorecard -> test taker"),
    ("scorecards", "score_profile_short_name", "score_profiles", "short_name", "scorecard -> score profile"),
]


def check_specs() -> list[dg.AssetCheckSpec]:
    specs: list[dg.AssetCheckSpec] = []
    for table in TABLES.values():
        key = asset_key(table.name)
        if table.key:
            specs.append(_spec("keys_unique_not_null", key, f"{', '.join(table.key)} is unique and never null"))
        specs.append(_spec("mode_pure", key, "every row's _mode is the partition's mode"))
        if table.kind == "history":
            specs.append(_spec("history_chains", key, "per key: contiguous versions, exactly one current unless deleted"))
    for child, column, parent, _, what in REFERENCES:
        specs.append(_spec(f"references_{parent}_{column}", asset_key(child), f"every {what} resolves"))
    for table in CAPPED_LISTS:
        specs.append(_spec("coverage", asset_key(table), "rows held vs the API's total_count"))
    # One check for every mode, not per partition (see freshness.py).
    specs.append(dg.AssetCheckSpec(
        freshness.CHECK_NAME, asset=asset_key("sync_runs"),
        description="each mode's warehouse was published within the last 26 hours (live stale: error; test: "
        "warning); evaluated by every sync and every 5 minutes by the jofi_freshness sensor, without a run",
    ))
    specs.append(_spec("last_run_complete", asset_key("sync_runs"), "the last published run fetched every record it planned"))
    return specs


def _spec(name: str, key: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, partitions_def=mode_partitions)


def run_checks(reader: PublishedReader, mode: str, watcher: WatchSummary | None = None) -> Iterator[dg.AssetCheckResult]:
    """`watcher`: the window watcher's record of this mode (webhooks/watch_log.py), when it ran."""
    for result in _evaluate(reader, mode, watcher):
        yield result.with_metadata(per_mode(result.metadata, mode))


def _evaluate(reader: PublishedReader, mode: str, watcher: WatchSummary | None) -> Iterator[dg.AssetCheckResult]:
    for table in TABLES.values():
        key = asset_key(table.name)
        if table.key:
            yield _unique_keys(reader, key, table.name)
        yield _mode_pure(reader, key, table.name, mode)
        if table.kind == "history":
            yield _history_chains(reader, key, table.name)
    for child, column, parent, parent_column, what in REFERENCES:
        yield _references(reader, child, column, parent, parent_column, what)
    coverage = reader.coverage()
    for table in CAPPED_LISTS:
        yield _coverage(coverage.get(table), table, mode, watcher)
    last = reader.last_published_run()
    yield _last_run_complete(last)


def _unique_keys(reader: PublishedReader, key, table: str) -> dg.AssetCheckResult:
    dupes, null_rows = reader.duplicate_keys(table), reader.null_key_rows(table)
    cols = ", ".join(f'"{c}"' for c in TABLES[table].key)
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


def _mode_pure(reader: PublishedReader, key, table: str, mode: str) -> dg.AssetCheckResult:
    foreign = {m: n for m, n in reader.rows_by_mode(table).items() if m != mode}
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


def _history_chains(reader: PublishedReader, key, table: str) -> dg.AssetCheckResult:
    broken = reader.history_breaks(table)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="history_chains",
        passed=broken == 0,
        metadata={
            "keys_with_broken_chains": broken,
            "what_to_do": "" if broken == 0 else f"{broken} keys of {table} have versions with a gap, an overlap, "
            "no or two current versions, or two neighbours with the same _row_hash. List them with "
            f"SELECT * FROM {table} ORDER BY ALL, and report a bug: history is written with the table it versions.",
        },
    )


def _references(reader: PublishedReader, child: str, column: str, parent: str, parent_column: str, what: str) -> dg.AssetCheckResult:
    count, sample = reader.dangling(child, column, parent, parent_column)
    return dg.AssetCheckResult(
        asset_key=asset_key(child),
        check_name=f"references_{parent}_{column}",
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dangling_rows": count,
            "sample_values": str(sample),
            "what_to_do": "" if count == 0 else f"{count} {what} references point at {parent} rows the warehouse does "
            f"not hold. Run `{settings.CLI} sync --mode <mode> --full` to fetch them by id.",
        },
    )


def _coverage(
    history: CoverageHistory | None, table: str, mode: str = "live", watcher: WatchSummary | None = None
) -> dg.AssetCheckResult:
    if history is None or not history.runs:
        return dg.AssetCheckResult(
            asset_key=asset_key(table), check_name="coverage", passed=False,
            severity=dg.AssetCheckSeverity.WARN, metadata={"what_to_do": "No sync has recorded coverage yet."},
        )
    total, held, missing, trend = history.api_total_count, history.rows_held, history.missing, history.trend
    hint = (
        f"Import their ids from your own records: `{settings.CLI} import-ids --kind {ENTITIES[table].import_kind} FILE "
        f"--mode {mode}`; the next sync fetches them by id."
    )
    if mode == "live":
        hint += f" To stop new gaps, run `{settings.CLI} webhooks` (live only) and turn on the jofi_webhook_events sensor."
    hint += (f" Without webhooks, `{settings.CLI} watch --mode {mode}` (or the jofi_window_watcher sensor) queues new"
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
            "gap_by_run": ", ".join(str(g) for g in history.gaps) + " (newest first)",
            "gap_trend": trend,
            "run_id": history.run_id,
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


def _last_run_complete(last: RunSummary | None) -> dg.AssetCheckResult:
    run_id, status, error = (last.run_id, last.status, last.error) if last else (None, None, None)
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
