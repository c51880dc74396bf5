"""Asset checks over the published database, each with metadata a person can act on.

The integrity checks (mode_pure, account_pure, keys_unique_not_null, references_resolve: the
references the sync guarantees) are blocking: the same rules (warehouse/integrity.py) gate every
publish, judged on the work database before anything is replaced, so a run that breaks one fails
with these checks failed and the published copy unchanged (`gate_results`). After a publish they
show the gate's verdicts, which the version's manifest keeps with the fingerprints of exactly the
tables published; they are judged again on the published copy when that file was changed after
its publish wrote it, or has no such record (PublishedReader.verdicts). Coverage, freshness,
history_chains and references_pending (the references JOFI's capped windows leave open for a
while) only warn.

One check per rule over every table, on the `sync_runs` asset (the record of each publish), not
one per rule and table: a run records three events per check (planned, output, evaluation), and
the 90 per-table checks cost a CLI sync seconds of Dagster bookkeeping. Each result names the
tables that fail in its description and metadata (`failed_tables`, `problem`, a table of them);
coverage stays per capped list (its plots are per list).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs import freshness
from jofi_pipeline.defs.partitions import mode_partitions, per_mode
from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.entities import CAPPED_LISTS, ENTITIES
from jofi_pipeline.warehouse import CoverageHistory, PublishedReader
from jofi_pipeline.warehouse.integrity import Finding
from jofi_pipeline.warehouse.published import RunSummary
from jofi_pipeline.webhooks.watch_log import WatchSummary, format_interval


@dataclass(frozen=True)
class Rule:
    """One check over every table it applies to."""

    name: str
    description: str
    blocking: bool


RULES_ASSET = "sync_runs"  # where the per-rule checks hang: the table with one row per publish
RULES = (
    Rule("keys_unique_not_null", "every table: its key is unique and never null", True),
    Rule("mode_pure", "every table: every row's _mode is the partition's mode", True),
    Rule("account_pure", "every table that names an account: every row belongs to the account the folder's identity names", True),
    Rule("references_resolve", "every reference the sync guarantees resolves (a child row -> its parent row, a scorecard "
         "or job-fit report -> its test taker)", True),
    Rule("references_pending", "references JOFI's capped windows can leave open a while resolve (an invitation -> its "
         "test taker, a scorecard -> its score profile)", False),
    Rule("history_chains", "every history table: per key contiguous versions, exactly one current unless deleted", False),
)
_RULES = {rule.name: rule for rule in RULES}


def rule_of(finding: Finding) -> Rule:
    """The check a per-table finding belongs to (references split by whether they block)."""
    if finding.check.startswith("references_"):
        return _RULES["references_resolve" if finding.blocking else "references_pending"]
    return _RULES[finding.check]


def check_specs() -> list[dg.AssetCheckSpec]:
    key = asset_key(RULES_ASSET)
    specs = [_spec(rule.name, key, rule.description + " (the failing tables are named in the result)", blocking=rule.blocking)
             for rule in RULES]
    for table in CAPPED_LISTS:
        specs.append(_spec("coverage", asset_key(table), "rows held vs the API's total_count"))
    # One check for every mode, not per partition (see freshness.py).
    specs.append(dg.AssetCheckSpec(
        freshness.CHECK_NAME, asset=key,
        description="each mode's warehouse was published within the last 26 hours (live stale: error; test: "
        "warning); evaluated by every sync and every 5 minutes by the jofi_freshness sensor, without a run",
    ))
    specs.append(_spec("last_run_complete", key, "the last published run fetched every record it planned"))
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
    found = reader.verdicts(mode, account_id)  # the publish gate's, recorded with this very file
    found += [_history_chains(table, broken) for table, broken in reader.every_history_breaks().items()]
    yield from integrity_results(found)
    coverage = reader.coverage()
    for table in CAPPED_LISTS:
        yield _coverage(coverage.get(table), table, mode, watcher)
    yield _last_run_complete(reader.last_published_run())


def gate_results(found: Iterable[Finding], mode: str) -> Iterator[dg.AssetCheckResult]:
    """A refused publish's judgement (on the work database) as this run's integrity checks."""
    for result in integrity_results(found):
        yield result.with_metadata(per_mode(result.metadata, mode))


def _history_chains(table: str, broken: int) -> Finding:
    return Finding(
        "history_chains", table, broken == 0, blocking=False,
        metadata={"keys_with_broken_chains": broken},
        problem="" if broken == 0 else f"{broken} keys have versions with a gap, an overlap, no or two current "
        "versions, or two neighbours with the same _row_hash",
        what_to_do="" if broken == 0 else f"list them with SELECT * FROM {table} ORDER BY ALL, and report a bug: "
        "history is written with the table it versions",
    )


# Per-table numbers a rule's result adds up (the others are texts, kept once each).
COUNTED = ("duplicate_keys", "null_key_rows", "rows_of_other_modes", "dangling_rows", "keys_with_broken_chains")


def integrity_results(found: Iterable[Finding]) -> Iterator[dg.AssetCheckResult]:
    """The per-table findings as one result per rule: ERROR when a blocking one fails, else WARN."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in found:
        by_rule.setdefault(rule_of(finding).name, []).append(finding)
    for name, findings in by_rule.items():
        yield rule_result(_RULES[name], findings)


def rule_result(rule: Rule, findings: list[Finding]) -> dg.AssetCheckResult:
    failed = [f for f in findings if not f.passed]
    tables = list(dict.fromkeys(f.table for f in findings))
    counted = {key: sum(int(f.metadata.get(key, 0) or 0) for f in findings) for key in COUNTED
               if any(key in f.metadata for f in findings)}
    texts: dict[str, list[str]] = {}
    for f in failed or findings:
        for key, value in f.metadata.items():
            if key not in COUNTED and str(value) not in ("", "[]"):
                texts.setdefault(key, []).append(f"{f.table}: {value}" if failed and key == "sample_values" else str(value))
    metadata: dict = {
        "tables_checked": len(tables),
        "failed_tables": ", ".join(dict.fromkeys(f.table for f in failed)),
        **counted,
        **{key: ", ".join(dict.fromkeys(values)) for key, values in texts.items()},
        "problem": "; ".join(f"{f.name}: {f.problem}" for f in failed),
        "what_to_do": " ".join(dict.fromkeys(f"{f.table}: {f.what_to_do}." for f in failed)),
    }
    if failed:
        rows = "\n".join(f"| {f.table} | {f.problem} |" for f in failed)
        metadata["failing_tables"] = dg.MetadataValue.md(f"| table | problem |\n|---|---|\n{rows}")
    description = (f"failed on {len(failed)} of {len(tables)} tables: {', '.join(f.table for f in failed)}" if failed
                   else f"passed on all {len(tables)} tables: {', '.join(tables)}")
    return dg.AssetCheckResult(
        asset_key=asset_key(RULES_ASSET),
        check_name=rule.name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
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
