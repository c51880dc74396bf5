"""Run the `jofi_sync` job in this process for one partition: what `sync` and `demo` share.

The job runs exactly as a scheduled run would (same assets, checks and resources), in the shared
instance (instance.py), and the run is created with the code location's origin, as the UI or the
daemon would create it: so it is listed on the job's Runs page and can be re-executed from there.
(`execute_in_process` records no origin, and the UI lists a job's runs by it.) Only the console
output differs: Dagster's console logger is quieted and the sync's progress goes to stderr in
plain words. A sync refused because another one of the mode is writing is refused before a run
exists, so no asset partition is ever marked failed for it. The CLI's `sync` starts the sync
itself before this module is even imported (sync/head_start.py): the op then relays that sync
instead of running one, and the time line says how long Dagster's start-up ran alongside it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jofi_pipeline import collector, settings
from jofi_pipeline.api.redact import redact_text
from jofi_pipeline.defs.partitions import LAUNCHED_BY_TAG, MODE_TAG
from jofi_pipeline.instance import batched_events, open_instance
from jofi_pipeline.settings import Mode
from jofi_pipeline.sync import head_start, own_runs
from jofi_pipeline.sync.explain import DAGSTER_INTERRUPTION, INTERRUPTED
from jofi_pipeline.sync.interrupted import interrupted_reason
from jofi_pipeline.sync.report import capped_window_note
from jofi_pipeline.sync.setup import resource_config
from jofi_pipeline.sync_refusal import SyncJobFailed, refuse_if_busy
from jofi_pipeline.warehouse import ModePaths

JOB_NAME = "jofi_sync"
ASSET_NODE = "jofi_warehouse"
# The code location as workspace.yaml and pyproject.toml ([tool.dg]/[tool.dagster]) name it.
LOCATION_NAME = "jofi_pipeline"
DEFINITIONS_MODULE = "jofi_pipeline.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
REPOSITORY_NAME = "__repository__"  # what Dagster calls the one repository of a Definitions


@dataclass
class TableOutcome:
    rows: int
    inserted: int
    updated: int
    drift: dict | None = None  # the table's schema drift this run ({kind: {field: objects}})
    api_total_count: int | None = None  # set when a capped list holds fewer rows than the API reports


@dataclass
class SyncOutcome:
    mode: Mode
    run_id: str
    seconds: float  # the whole command: loading the definitions, the Dagster run, its checks
    tables: dict[str, TableOutcome] = field(default_factory=dict)
    status: str = "succeeded"  # or "partial": published, but some records could not be fetched
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    requests: int = 0
    startup_seconds: float = 0.0  # until the sync began: loading Dagster and the instance, or (head start) the sync's own
    alongside_seconds: float | None = None  # a head-started sync: Dagster's start-up, while the sync ran
    fetch_and_merge_seconds: float = 0.0  # sync_runs.finished_at - started_at
    publish_seconds: float = 0.0


@functools.cache
def load_definitions() -> dg.Definitions:
    """The code location's definitions, built once per process (they hold no run state: a run's
    settings come in its run config)."""
    from jofi_pipeline.definitions import defs

    return defs() if callable(defs) else defs


@functools.cache
def sync_job() -> dg.JobDefinition:
    """`jofi_sync` as the code location defines it, built for a run in this process.

    Built from the defs folder alone: `load_from_defs_folder` adds to the code location a catalogue
    of every installed component type (JSON schemas of ~20 pydantic models, for `dg` and the UI),
    repository metadata no run reads, ~0.1 s of a CLI sync. The job is the same (tested: same
    snapshot id as the code location's).
    """
    from dagster._utils.warnings import suppress_dagster_warnings

    @suppress_dagster_warnings  # as load_from_defs_folder does: no preview notes on a person's terminal
    def build() -> dg.Definitions:
        tree = component_tree()
        return tree.build_defs(tree.defs_module_path)

    return build().resolve_job_def(JOB_NAME)


def component_tree() -> dg.ComponentTree:
    """The project's component tree as `ComponentTree.for_project` finds it (tested), from the names
    pyproject.toml's [tool.dg.project] gives, without finding and parsing that file (~0.035 s)."""
    from jofi_pipeline import defs

    return dg.ComponentTree(defs_module=defs, project_root=Path(defs.__file__).resolve().parents[2],
                            code_location_name=LOCATION_NAME)


def job_origins(job_name: str):
    """(remote origin, code origin) of `job_name` in the code location the UI loads.

    Built from names, not by loading a workspace (that would snapshot every asset again): the
    UI matches runs to the job by the origin's `repository@location` label.
    """
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    cwd = os.getcwd()
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=cwd)
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, LOCATION_NAME)
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)
    pointer = ModuleCodePointer(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, cwd)
    code = JobPythonOrigin(job_name, RepositoryPythonOrigin(sys.executable, pointer))
    return remote, code


def run_job_here(job: dg.JobDefinition, instance: dg.DagsterInstance, mode: Mode, run_config: dict, tags: dict | None = None):
    """Create the run of `job` for partition `mode` with its origin, then execute it in this process."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    remote, code = job_origins(job.name)
    with batched_events():  # the run's ~50 planned events in one write (instance.py)
        run = instance.create_run_for_job(
            job_def=job,
            run_config=run_config,
            tags={**job.run_tags, **job.get_tags_for_partition_key(mode, selected_asset_keys=None), MODE_TAG: mode, **(tags or {})},
            remote_job_origin=remote,
            job_code_origin=code,
            status=dg.DagsterRunStatus.NOT_STARTED,
        )
        return execute_run(InMemoryJob(job), run, instance)


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
    run_config = {
        "ops": {ASSET_NODE: {"config": {"full_refresh": full_refresh, "score_profile": score_profile}}},
        "resources": {"jofi": {"config": resource_config(wait=wait, concurrency=concurrency, rate=rate, data_dir=data_dir)}},
        # The CLI prints its own one-line reason; Dagster's console would add step tracebacks.
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    head = head_start.held(mode)  # the CLI's: refused or not before it started (cli.sync)
    started = head.started if head is not None else time.monotonic()
    if head is None:
        refuse_if_busy(mode, data_dir, wait)
    job = sync_job()
    with ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(open_instance())
        collector.loaded()  # the console script's start-up ends here (collector.py)
        ready = time.monotonic()
        opened_before = set(own_runs.opened(mode))  # the syncs this command runs here are the others
        with progress_to_stderr():
            result = run_job_here(job, instance, mode, run_config, {LAUNCHED_BY_TAG: "cli"})
    if not result.success:
        reason = _failure_reason(result)
        if reason == INTERRUPTED:  # the sync may have published before the interruption: say what is true
            if head is not None:
                head.stop()  # its sync ends first (a publish under way finishes) and records how it ended
            own = {*own_runs.opened(mode), *((head.run_id,) if head is not None else ())} - opened_before
            reason = interrupted_reason(ModePaths.of(mode, data_dir), own)
        raise SyncJobFailed(f"{mode} sync failed: {reason}")
    outcome = _outcome(mode, result, time.monotonic() - started)
    if head is not None and head.sync_began is not None:
        # The sync began long before Dagster was ready: its start-up ran alongside, not before.
        outcome.startup_seconds = head.sync_began - started
        outcome.alongside_seconds = ready - started
    else:
        outcome.startup_seconds = ready - started
    return outcome


def _failure_reason(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                error = data.error
                if DAGSTER_INTERRUPTION in (error.cls_name or "") + error.message:
                    return INTERRUPTED  # Ctrl-C, or the run stopped: in words, as `status` says it
                while error.cause is not None and "DagsterExecutionStepExecutionError" in (error.cls_name or "") + error.message:
                    error = error.cause  # Dagster's wrapper says only "error in op"; the cause says what
                return redact_text(error.message.strip().splitlines()[0])
    if any(event.is_run_failure and "interrupted" in (event.message or "") for event in result.all_events):
        return INTERRUPTED  # Ctrl-C before the step began: Dagster says "Execution was interrupted ..."
    return "the run failed (see the Dagster event log)"


def _outcome(mode: Mode, result, seconds: float) -> SyncOutcome:
    outcome = SyncOutcome(mode=mode, run_id=result.dagster_run.run_id, seconds=seconds)
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        md = {k: v.value for k, v in mat.metadata.items()}
        if "inserted" not in md:
            continue  # a view: no rows of its own
        outcome.status = md.get("sync_status", outcome.status)
        outcome.requests = int(md.get("requests", outcome.requests))
        outcome.fetch_and_merge_seconds = float(md.get("fetch_and_merge_seconds", outcome.fetch_and_merge_seconds))
        outcome.publish_seconds = float(md.get("publish_seconds", outcome.publish_seconds))
        outcome.tables[mat.asset_key.path[-1]] = TableOutcome(
            rows=int(md.get("dagster/row_count", 0)), inserted=int(md.get("inserted", 0)), updated=int(md.get("updated", 0)),
            drift=md.get("schema_drift"), api_total_count=md.get("api_total_count"),
        )
    for event in result.get_asset_check_evaluations():
        if event.passed:
            continue
        # A rule's check covers every table and names the failing ones: say `users.mode_pure`.
        failing = event.metadata.get("failed_tables")
        tables = [t.strip() for t in str(failing.value).split(",") if t.strip()] if failing is not None else []
        names = [f"{t}.{event.check_name}" for t in tables] or [f"{event.asset_key.path[-1]}.{event.check_name}"]
        (outcome.checks_failed if event.severity == dg.AssetCheckSeverity.ERROR else outcome.checks_warned).extend(names)
    return outcome


def time_line(outcome: SyncOutcome) -> str:
    """The durations in tenths of a second that add up to the printed whole (each part rounded
    alone, four parts could miss it by 0.2 s): the largest-remainder rounding, every part within
    0.1 s of what was measured; the Dagster run is the rest of the whole. A head-started sync
    (sync/head_start.py) began before Dagster was loaded: how long that took is said after the
    sum, not in it, since it overlapped the fetch."""
    measured = [outcome.startup_seconds, outcome.fetch_and_merge_seconds, outcome.publish_seconds]
    parts = [*measured, max(outcome.seconds - sum(measured), 0.0)]
    tenths = [p * 10 for p in parts]
    shown = [math.floor(t) for t in tenths]
    missing = round(sum(tenths)) - sum(shown)
    for index in sorted(range(len(parts)), key=lambda i: shown[i] - tenths[i])[:missing]:
        shown[index] += 1
    start_up, fetch_and_merge, publish, rest = (t / 10 for t in shown)
    line = (f"time: start-up {start_up:.1f}s + fetch and merge {fetch_and_merge:.1f}s + publish {publish:.1f}s + "
            f"Dagster run and checks {rest:.1f}s = {sum(shown) / 10:.1f}s")
    if outcome.alongside_seconds is not None:
        line += f" (Dagster's start-up, {outcome.alongside_seconds:.1f}s, ran alongside the sync)"
    return line


def print_summary(outcome: SyncOutcome, out=None) -> None:
    out = out or sys.stdout
    verb = "succeeded" if outcome.status == "succeeded" else "published with records missing (see warnings)"
    print(f"\n{outcome.mode} sync {verb} (Dagster run {outcome.run_id[:8]}, {outcome.requests} requests)", file=out)
    print(time_line(outcome), file=out)
    print(f"{'table':<30}{'rows':>10}{'inserted':>10}{'updated':>10}", file=out)
    for table, t in sorted(outcome.tables.items()):
        print(f"{table:<30}{t.rows:>10}{t.inserted:>10}{t.updated:>10}", file=out)
    gaps = [(table, t.rows, t.api_total_count) for table, t in sorted(outcome.tables.items()) if t.api_total_count]
    if gaps:
        print(capped_window_note(outcome.mode, gaps), file=out)
    for table, t in sorted(outcome.tables.items()):
        if t.drift:
            shown = "; ".join(f"{kind} " + ", ".join(f"{n} x{c}" for n, c in names.items()) for kind, names in t.drift.items())
            print(f"schema drift in {table} (raw JSON kept, run succeeded): {shown}", file=out)
    if outcome.checks_warned:
        print(f"checks warning: {', '.join(outcome.checks_warned)}  (see `{settings.CLI} status`)", file=out)
    if outcome.checks_failed:
        print(f"checks FAILED: {', '.join(outcome.checks_failed)}", file=out)
