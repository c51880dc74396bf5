"""Run the `jofi_sync` job in-process for one partition: what `sync` and `demo` share.

The job runs exactly as a scheduled run would (same assets, checks and resources); only the
console output differs: Dagster's own console logger is quieted and the sync's progress lines go
to stderr in plain words.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.settings import Mode
from jofi_pipeline.api.redact import redact_text

JOB_NAME = "jofi_sync"
ASSET_NODE = "jofi_warehouse"


class SyncJobFailed(Exception):
    """The run failed; the message is the one-line reason."""


@dataclass
class TableOutcome:
    rows: int
    inserted: int
    updated: int
    drift: dict | None = None  # the table's schema drift this run ({kind: {field: objects}})


@dataclass
class SyncOutcome:
    mode: Mode
    run_id: str
    seconds: float
    tables: dict[str, TableOutcome] = field(default_factory=dict)
    status: str = "succeeded"  # or "partial": published, but some records could not be fetched
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)


def load_definitions() -> dg.Definitions:
    from jofi_pipeline.definitions import defs

    return defs() if callable(defs) else defs


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


@contextmanager
def progress_to_stderr():
    logger = logging.getLogger("jofi_pipeline.sync")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def sync_mode(
    mode: Mode,
    *,
    full_refresh: bool = False,
    score_profile: str = "",
    concurrency: int | None = None,
    rate: float | None = None,
    data_dir: Path | None = None,
    wait: float = 0.0,
    instance: dg.DagsterInstance | None = None,
) -> SyncOutcome:
    # A person at a terminal is told at once that another sync is writing (unless they ask to wait).
    resource_config: dict = {"writer_wait_seconds": wait}
    if concurrency is not None:
        resource_config["max_concurrency"] = concurrency
    if rate is not None:
        resource_config["requests_per_second"] = rate
    if data_dir is not None:
        resource_config["data_dir"] = str(data_dir)
    run_config = {
        "ops": {ASSET_NODE: {"config": {"full_refresh": full_refresh, "score_profile": score_profile}}},
        "resources": {"jofi": {"config": resource_config}},
        # The CLI prints its own one-line reason; Dagster's console would add step tracebacks.
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    job = load_definitions().resolve_job_def(JOB_NAME)
    started = time.monotonic()
    with progress_to_stderr():
        result = job.execute_in_process(
            run_config=run_config,
            partition_key=mode,
            instance=instance or _instance(),
            raise_on_error=False,
        )
    if not result.success:
        raise SyncJobFailed(f"{mode} sync failed: {_failure_reason(result)}")
    return _outcome(mode, result, time.monotonic() - started)


def _failure_reason(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                error = data.error
                while error.cause is not None and "DagsterExecutionStepExecutionError" in (error.cls_name or "") + error.message:
                    error = error.cause  # Dagster's wrapper says only "error in op"; the cause says what
                return redact_text(error.message.strip().splitlines()[0])
    return "the run failed (see the Dagster event log)"


def _outcome(mode: Mode, result, seconds: float) -> SyncOutcome:
    outcome = SyncOutcome(mode=mode, run_id=result.dagster_run.run_id, seconds=seconds)
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        md = {k: v.value for k, v in mat.metadata.items()}
        outcome.status = md.get("sync_status", outcome.status)
        outcome.tables[mat.asset_key.path[-1]] = TableOutcome(
            rows=int(md.get("dagster/row_count", 0)), inserted=int(md.get("inserted", 0)), updated=int(md.get("updated", 0)),
            drift=md.get("schema_drift"),
        )
    for event in result.get_asset_check_evaluations():
        name = f"{event.asset_key.path[-1]}.{event.check_name}"
        if not event.passed:
            (outcome.checks_failed if event.severity == dg.AssetCheckSeverity.ERROR else outcome.checks_warned).append(name)
    return outcome


def print_summary(outcome: SyncOutcome, out=None) -> None:
    out = out or sys.stdout
    verb = "succeeded" if outcome.status == "succeeded" else "published with records missing (see warnings)"
    print(f"\n{outcome.mode} sync {verb} in {outcome.seconds:.1f}s (dagster run {outcome.run_id[:8]})", file=out)
    print(f"{'table':<30}{'rows':>10}{'inserted':>10}{'updated':>10}", file=out)
    for table, t in sorted(outcome.tables.items()):
        print(f"{table:<30}{t.rows:>10}{t.inserted:>10}{t.updated:>10}", file=out)
    for table, t in sorted(outcome.tables.items()):
        if t.drift:
            shown = "; ".join(f"{kind} " + ", ".join(f"{n} x{c}" for n, c in names.items()) for kind, names in t.drift.items())
            print(f"schema drift in {table} (raw JSON kept, run succeeded): {shown}", file=out)
    if outcome.checks_warned:
        print(f"checks warning: {', '.join(outcome.checks_warned)}  (see `jofi-pipeline status`)", file=out)
    if outcome.checks_failed:
        print(f"checks FAILED: {', '.join(outcome.checks_failed)}", file=out)
