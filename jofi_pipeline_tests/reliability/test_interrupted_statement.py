"""A run stopped while the main thread is inside a DuckDB statement ends stopped, as any other.

Dagster stops a run with a SIGINT its handler turns into DagsterExecutionInterruptedError. Inside
a DuckDB statement on the main thread (a fetch plan, a query of the published copy), DuckDB runs
that handler, stops its query and raises RuntimeError("Query interrupted") instead, and Dagster's
exception is lost: the run was recorded as failed with "RuntimeError: Query interrupted" and
Dagster saw a failure (sync/swallowed.py). A real simulator, real DuckDB files, the job run in
this process by Dagster with its own signal handling, a real SIGINT landing inside the statement.
"""

from __future__ import annotations


import dagster as dg
import duckdb
import pytest

from jofi_pipeline.runs import sync_mode
from jofi_pipeline.sync import runner
from jofi_pipeline.sync.explain import INTERRUPTED
from jofi_pipeline.sync.plan import Plan
from jofi_pipeline.sync_refusal import SyncJobFailed
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.warehouse.attempts import AttemptLog
from jofi_pipeline_tests.reliability.test_interrupted_publish import lock_is_free, recorded_run
from jofi_pipeline_tests.signal_in_statement import StatementSignal, handlers_kept


@pytest.fixture(autouse=True)
def signal_handlers_kept():
    with handlers_kept():
        yield


@pytest.fixture
def sim_env(sim, monkeypatch):
    for name, value in sim.env().items():  # the URL and keys, as the CLI's run reads them
        monkeypatch.setenv(name, value)
    return sim


def duckdb_raised_its_own_error(statement: StatementSignal) -> bool:
    """The signal landed inside the statement, and DuckDB raised in place of Dagster's interruption."""
    raised = statement.raised
    return statement.sent.is_set() and type(raised) is RuntimeError and str(raised) == "Query interrupted"


def step_failures(instance: dg.DagsterInstance) -> list:
    """The errors of the (only) run's step failures, as Dagster recorded them."""
    return [e.dagster_event.step_failure_data.error for e in instance.all_logs(instance.get_runs()[0].run_id)
            if e.dagster_event is not None and e.dagster_event.is_step_failure]


def stopped_in_the_first_plan(monkeypatch, statement: StatementSignal) -> None:
    """The run's first fetch plan, on the work database's reader: a slow statement first, stopped inside."""

    class SlowPlan(Plan):
        def __init__(self, reader, sql, params, **kwargs):
            if not statement.sent.is_set():
                statement.run(reader)
            super().__init__(reader, sql, params, **kwargs)

    monkeypatch.setattr(runner, "Plan", SlowPlan)


def test_a_run_stopped_inside_a_plan_query_is_recorded_and_ends_as_interrupted(sim_env, tmp_path, monkeypatch):
    paths = ModePaths.of("live", tmp_path)
    statement = StatementSignal()
    stopped_in_the_first_plan(monkeypatch, statement)
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(SyncJobFailed) as failed:
        sync_mode("live", data_dir=tmp_path, instance=instance)
    assert duckdb_raised_its_own_error(statement), statement
    assert str(failed.value) == f"live sync failed: {INTERRUPTED}"  # was "... RuntimeError: Query interrupted"
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert (attempt.status, attempt.reason) == ("failed", INTERRUPTED), attempt
    recorded = recorded_run(paths, attempt.run_id)
    assert recorded == [("failed", INTERRUPTED)]
    assert lock_is_free(paths)
    # Dagster saw its own interruption, not a failure of the step's code.
    failures = [(f.cls_name, f.cause.cls_name if f.cause else None) for f in step_failures(instance)]
    assert failures == [("DagsterExecutionInterruptedError", "RuntimeError")], failures


@pytest.mark.parametrize("nth", [1, 2], ids=["first table", "after the step's first result"])
def test_a_run_stopped_inside_a_query_of_the_published_copy_says_it_published(sim_env, tmp_path, monkeypatch, nth):
    """After the publish, while the step reads the published copy for the tables' metadata: the
    data is live, and the command says so, not "RuntimeError: Query interrupted". The second
    table's read comes after the step yielded its first result, where Dagster has put its own
    handler in again for the generator's next step (a review found the noting gone there)."""
    from jofi_pipeline.defs import assets

    statement = StatementSignal()
    metadata = assets.relation_metadata
    calls = []

    def slow_metadata(reader, name, mode, *args, **kwargs):
        calls.append(name)
        if len(calls) == nth:
            with duckdb.connect() as con:  # the reader's own settings are locked (readonly.py): any statement will do
                statement.run(con)
        return metadata(reader, name, mode, *args, **kwargs)

    monkeypatch.setattr(assets, "relation_metadata", slow_metadata)
    with pytest.raises(SyncJobFailed) as failed:
        sync_mode("live", data_dir=tmp_path, instance=dg.DagsterInstance.ephemeral())
    assert duckdb_raised_its_own_error(statement), statement
    attempt = AttemptLog(ModePaths.of("live", tmp_path).attempts).recent("live", 1)[0]
    assert attempt.status == "succeeded"
    assert str(failed.value).startswith("live sync failed: the sync was interrupted (Ctrl-C, or its run was stopped), "
                                        f"yet its data is published (sync run {attempt.run_id}, succeeded)"), failed.value


def test_a_run_stopped_as_it_begins_is_recorded_and_told_as_any_stop(sim_env, tmp_path, monkeypatch):
    """Stopped as the run begins (staging the copy its publish starts from), plainly or inside a
    statement on the writer's connection: recorded as interrupted, not left without a sync_runs row
    (before, its command could only say it did not know whether the run had published)."""
    from jofi_pipeline.warehouse.store import RunWriter

    stage = RunWriter.stage_publish

    def stopped(how):
        def stage_publish(writer):
            how(writer)
            return stage(writer)
        monkeypatch.setattr(RunWriter, "stage_publish", stage_publish)

    def plainly(writer):  # Dagster's handler raising where no statement runs: the usual case
        raise dg.DagsterExecutionInterruptedError()

    statement = StatementSignal()
    told = {}
    for name, how in (("plainly", plainly), ("in a statement", lambda writer: statement.run(writer.con))):
        stopped(how)
        instance = dg.DagsterInstance.ephemeral()
        with pytest.raises(SyncJobFailed) as failed:
            sync_mode("live", data_dir=tmp_path / name, instance=instance)
        failures = [f.cls_name for f in step_failures(instance)]
        paths = ModePaths.of("live", tmp_path / name)
        attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
        recorded = recorded_run(paths, attempt.run_id)
        status = instance.get_runs()[0].status.value  # what Dagster's run list shows a person
        told[name] = (str(failed.value), failures, lock_is_free(paths), (attempt.status, attempt.reason), recorded, status)
    assert duckdb_raised_its_own_error(statement), statement
    assert told["in a statement"] == told["plainly"], told
    assert told["plainly"] == (f"live sync failed: {INTERRUPTED}", ["DagsterExecutionInterruptedError"], True,
                               ("failed", INTERRUPTED), [("failed", INTERRUPTED)], "FAILURE"), told  # in process
