"""Asset checks over the published database, each with metadata a person can act on.

The integrity checks (mode_pure, account_pure, keys_unique_not_null, the references the sync
guarantees) are blocking: the same rules (warehouse/integrity.py) gate every publish, judged on the
work database before anything is replaced, so a run that breaks one fails with these checks failed
and the published copy unchanged (`gate_results`). After a publish they are judged again on the
published copy, exactly what analysts see. Coverage, freshness and the references JOFI's capped
windows leave open for a while only warn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs import freshness
from jofi_pipeline.defs.partitions import mode_partitions, per_mode
from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.entities import CAPPED_LISTS, ENTITIES
from jofi_pipeline.warehouse import CoverageHistory, PublishedReader
from jofi_pipeline.warehouse.integrity import REFERENCES, Finding, account_tables
from jofi_pipeline.warehouse.published import RunSummary
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.webhooks.watch_log import WatchSummary, format_interval


def check_specs() -> list[dg.AssetCheckSpec]:
    specs: list[dg.AssetCheckSpec] = []
    for table in TABLES.values():
        key = asset_key(table.name)
        if table.key:
            specs.append(_spec("keys_unique_not_null", key, f"{', '.join(table.key)} is unique and never null", blocking=True))
        specs.append(_spec("mode_pure", key, "every row's _mode is the partition's mode", blocking=True))
        if table.kind == "history":
            specs.append(_spec("history_chains", key, "per key: contiguous versions, exactly one current unless deleted"))
    for table in account_tables():
        specs.append(_spec("account_pure", asset_key(table), "every row belongs to the account the folder's identity names", blocking=True))
    for ref in REFERENCES:
        specs.append(_spec(ref.check_name, asset_key(ref.child), f"every {ref.what} resolves", blocking=ref.blocking))
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


def _spec(name: str, key: dg.AssetKey, description: str, *, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, partitions_def=mode_partitions, blocking=blocking)


def run_checks(
    reader: PublishedReader, mode: str, watcher: WatchSummary | None = None, account_id: int | None = None
) -> Iterator[dg.AssetCheckResult]:
    """`watcher`: the window watcher's record of this mode (webhooks/watch_log.py), when it ran.
    `account_id`: the account the folder's identity names (None: only "one account" is checked)."""
    for result in _evaluate(reader, mode, watcher, account_id):
        yield result.with_metadata(per_mode(result.metadata, mode))


def _evaluate(
    reader: PublishedReader, mode: str, watcher: WatchSummary | None, account_id: int | None
) -> Iterator[dg.AssetCheckResult]:
    yield from integrity_results(reader.findings(mode, account_id))
    for table in TABLES.values():
        if table.kind == "history":
            yield _history_chains(reader, asset_key(table.name), table.name)
    coverage = reader.coverage()
    for table in CAPPED_LISTS:
        yield _coverage(coverage.get(table), table, mode, watcher)
    last = reader.last_published_run()
    yield _last_run_complete(last)


def gate_results(found: Iterable[Finding], mode: str) -> Iterator[dg.AssetCheckResult]:
    """A refused publish's judgement (on the work database) as this run's integrity checks."""
    for result in integrity_results(found):
        yield result.with_metadata(per_mode(result.metadata, mode))


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


def integrity_results(found: Iterable[Finding]) -> Iterator[dg.AssetCheckResult]:
    """The integrity rules as check results: ERROR when a blocking one fails, else WARN."""
    for finding in found:
        yield dg.AssetCheckResult(
            asset_key=asset_key(finding.table),
            check_name=finding.check,
            passed=finding.passed,
            severity=dg.AssetCheckSeverity.ERROR if finding.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                **finding.metadata,
                "problem": finding.problem,
                "what_to_do": finding.what_to_do,
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
