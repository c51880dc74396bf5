"""A sync interrupted around its publish says what is true, and no second writer starts under it.

A cancellation (a stopped Dagster run, Ctrl-C) stops the coroutine that awaits a worker thread,
not the thread: a publish begun must end (published, or not) before the run records its outcome,
closes its connection and lets the writer lock go (sync/uninterrupted.py); and an interruption
after the publish must not be told as "nothing was published" (sync/interrupted.py); one while
the lists are read is told as an interruption, not as a TaskGroup's group (sync/runner.py). A real
simulator, real DuckDB files; the interruptions are injected at the exact step they hit.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import dagster as dg
import duckdb
import pytest

from jofi_pipeline.api import JofiClient
from jofi_pipeline.runs import sync_mode
from jofi_pipeline.sync import SyncOptions, run_sync
from jofi_pipeline.sync.by_id import PipelinedWrites
from jofi_pipeline.sync.explain import INTERRUPTED
from jofi_pipeline.sync.interrupted import NOT_KNOWN_YET, interrupted_reason
from jofi_pipeline.sync.report import utc_now
from jofi_pipeline.sync_refusal import SyncJobFailed
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, WarehouseBusyError, WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog
from jofi_pipeline.warehouse.lock import ModeLock
from jofi_pipeline.warehouse.store import RunWriter
from jofi_pipeline_tests.reliability.synced_once import copy_into, synced_live  # noqa: F401  (a fixture)

LET_THE_CANCELLATION_ACT = 0.3  # seconds the cancelled sync has to record, close and unlock (if it would)


def sync(sim, data, task_seen: list | None = None):
    async def go():
        if task_seen is not None:
            task_seen.append((asyncio.get_running_loop(), asyncio.current_task()))
        async with JofiClient.from_env("live", base_url=sim.base_url) as client:
            return await run_sync(client, WarehouseStore(data, "live"), SyncOptions())

    return asyncio.run(go())


def current_version(paths: ModePaths) -> str:
    return os.readlink(paths.current)


def lock_is_free(paths: ModePaths) -> bool:
    probe = ModeLock(paths.lock, "live")
    try:
        probe.acquire("probe")
    except WarehouseBusyError:
        return False
    probe.release()
    return True


def recorded_run(paths: ModePaths, run_id: str) -> list[tuple]:
    """The run's (status, error) as `sync_runs` holds it."""
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        return con.execute("SELECT status, error FROM sync_runs WHERE run_id = ?", [run_id]).fetchall()


def cancel_then_keep_busy(writer, task_seen: list) -> None:
    """From inside a merge: cancel the sync, wait until the cancellation is under way, then keep the
    connection busy a while, as a large batch would (the run must not record through it meanwhile)."""
    loop, task = task_seen[0]
    loop.call_soon_threadsafe(task.cancel)
    deadline = time.monotonic() + LET_THE_CANCELLATION_ACT + 10
    while not task.cancelling() and time.monotonic() < deadline:
        time.sleep(0.01)
    busy_until = time.monotonic() + LET_THE_CANCELLATION_ACT
    while time.monotonic() < busy_until:
        writer.query("SELECT count(*) FROM sync_runs")


def test_a_sync_cancelled_while_it_publishes_lets_the_publish_finish_and_says_it_published(sim, tmp_path, monkeypatch, synced_live):
    paths = ModePaths.of("live", tmp_path)
    copy_into(synced_live, tmp_path)  # a first run behind it: the subject is the next one
    before = current_version(paths)
    sim.advance(days=2)
    task_seen: list = []
    seen: dict = {}
    swap = publish_module.swap_symlink

    def cancelled_just_before_the_switch(link, target, **how):
        """In the publish's thread, once built: the sync is cancelled, then the new version goes live."""
        if link == paths.current and not seen:
            loop, task = task_seen[0]
            loop.call_soon_threadsafe(task.cancel)
            deadline = time.monotonic() + 10
            while not task.cancelling() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(LET_THE_CANCELLATION_ACT)
            seen["lock free while publishing"] = lock_is_free(paths)
            seen["attempts recorded by then"] = [a.status for a in AttemptLog(paths.attempts).recent("live", 5)]
        return swap(link, target, **how)

    monkeypatch.setattr(publish_module, "swap_symlink", cancelled_just_before_the_switch)
    with pytest.raises(asyncio.CancelledError):  # the run still ends cancelled
        sync(sim, tmp_path, task_seen)
    # No second writer could start while the publish ran, and nothing was recorded before it ended.
    assert seen == {"lock free while publishing": False, "attempts recorded by then": ["succeeded"]}, seen  # the first sync's
    assert current_version(paths) != before  # the publish went through
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    with PublishedWarehouse("live", tmp_path).open() as reader:
        published_run = reader.last_published_run()
    assert (attempt.status, attempt.reason) == ("succeeded", None), attempt  # not "nothing was published"
    assert (published_run.run_id, published_run.status) == (attempt.run_id, "succeeded")
    assert lock_is_free(paths)
    monkeypatch.setattr(publish_module, "swap_symlink", swap)
    assert sync(sim, tmp_path).status == "succeeded"  # the warehouse is whole for the next sync


def test_an_interruption_after_the_publish_is_not_told_as_nothing_published(sim, tmp_path, monkeypatch):
    """Ctrl-C while Dagster records the tables: the data is live, and the command says so."""
    from jofi_pipeline.defs import assets

    def interrupted(*args, **kwargs):  # what Dagster's signal handler raises in the step on Ctrl-C
        raise dg.DagsterExecutionInterruptedError()

    for name, value in sim.env().items():  # the URL and keys, as the CLI's run reads them
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(assets, "relation_metadata", interrupted)
    with pytest.raises(SyncJobFailed) as failed:
        sync_mode("live", data_dir=tmp_path, instance=dg.DagsterInstance.ephemeral())
    attempt = AttemptLog(ModePaths.of("live", tmp_path).attempts).recent("live", 1)[0]
    assert attempt.status == "succeeded"
    message = str(failed.value)
    assert INTERRUPTED not in message and "nothing was published" not in message, message
    assert message.startswith("live sync failed: the sync was interrupted (Ctrl-C, or its run was stopped), yet its "
                              f"data is published (sync run {attempt.run_id}, succeeded)"), message


def _interrupted_while_reading_users(monkeypatch) -> None:
    """Dagster's interruption of a terminated run, raised in the task reading /users: the lists
    are read side by side in a TaskGroup, which groups a BaseException that is not Ctrl-C."""
    read = JofiClient.list

    async def list_or_interrupted(self, entity, on_page=None):
        if entity == "users":
            await asyncio.sleep(0.05)  # the other lists are under way
            raise dg.DagsterExecutionInterruptedError()
        return await read(self, entity, on_page)

    monkeypatch.setattr(JofiClient, "list", list_or_interrupted)


def test_dagster_interrupting_the_list_reads_goes_on_as_itself_not_as_a_group(sim, tmp_path, monkeypatch):
    """Dagster knows its own interruption by type: wrapped in "BaseExceptionGroup: unhandled errors
    in a TaskGroup" it was told as a crash, in the command's error and the run's failure."""
    _interrupted_while_reading_users(monkeypatch)
    with pytest.raises(dg.DagsterExecutionInterruptedError):  # not a BaseExceptionGroup around it
        sync(sim, tmp_path)
    attempt = AttemptLog(ModePaths.of("live", tmp_path).attempts).recent("live", 1)[0]
    assert attempt.reason == INTERRUPTED, attempt

    for name, value in sim.env().items():  # the URL and keys, as the CLI's run reads them
        monkeypatch.setenv(name, value)
    with pytest.raises(SyncJobFailed) as failed:
        sync_mode("live", data_dir=tmp_path / "dagster", instance=dg.DagsterInstance.ephemeral())
    assert str(failed.value) == f"live sync failed: {INTERRUPTED}"  # runs._failure_reason, as `status` says it


def test_an_error_beside_the_interruption_does_not_hide_it():
    """A list that failed as the run was stopped: the stop is why the reads ended, so it goes on."""
    from jofi_pipeline.sync.runner import _stop_in

    stop = dg.DagsterExecutionInterruptedError()
    group = BaseExceptionGroup("unhandled errors in a TaskGroup", [ValueError("a list's error"), BaseExceptionGroup("g", [stop])])
    assert _stop_in(group) is stop
    assert any("a list's error" in note for note in stop.__notes__), stop.__notes__  # not lost from the record


def test_a_grouped_base_exception_other_than_dagsters_stays_in_its_group():
    """Only Dagster's interruption is taken out: a child's GeneratorExit must not reach the
    teardown's own GeneratorExit handler (a second Ctrl-C) as if raised there."""
    from jofi_pipeline.sync.runner import _stop_in

    group = BaseExceptionGroup("unhandled errors in a TaskGroup", [GeneratorExit()])
    assert _stop_in(group) is group


def test_a_sync_cancelled_while_a_batch_merges_lets_it_commit_then_records_the_run(sim, tmp_path, monkeypatch):
    """The fan-out merges batches in worker threads. Cancelled meanwhile, the run recorded itself
    through, then closed, the connection the merge still used: the batch was lost with it, or the
    sync ended with "connection is busy" instead of as cancelled, its sync_runs row missing."""
    paths = ModePaths.of("live", tmp_path)
    task_seen: list = []
    merging: list = []
    upsert = RunWriter.upsert

    def cancelled_while_merging(writer, entity, objects, synced_at, **kwargs):
        if entity == "scorecards" and not merging:  # only the fan-out merges scorecards
            merging.append(entity)
            cancel_then_keep_busy(writer, task_seen)
        return upsert(writer, entity, objects, synced_at, **kwargs)

    monkeypatch.setattr(RunWriter, "upsert", cancelled_while_merging)
    with pytest.raises(asyncio.CancelledError):
        sync(sim, tmp_path, task_seen)
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert (attempt.status, attempt.reason) == ("failed", INTERRUPTED)
    recorded = recorded_run(paths, attempt.run_id)
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        scorecards = con.execute("SELECT count(*) FROM scorecards").fetchall()[0][0]
    assert recorded == [("failed", INTERRUPTED)]
    assert scorecards > 0  # the batch that was merging committed
    assert lock_is_free(paths)
    monkeypatch.setattr(RunWriter, "upsert", upsert)
    assert sync(sim, tmp_path).status == "succeeded"


def test_a_sync_cancelled_while_a_list_batch_merges_lets_it_commit_then_records_the_run(sim, tmp_path, monkeypatch):
    """The list reads merge their batches through _Run.upsert: cancelled meanwhile, the run must
    not record itself through (nor close) the connection the merge still uses."""
    paths = ModePaths.of("live", tmp_path)
    task_seen: list = []
    merging: list = []
    upsert = RunWriter.upsert

    def cancelled_while_merging(writer, entity, objects, synced_at, **kwargs):
        if entity == "test_takers" and not merging and "state" not in kwargs:  # the list's batch, not a by-id one
            merging.append(len(objects))
            cancel_then_keep_busy(writer, task_seen)
        return upsert(writer, entity, objects, synced_at, **kwargs)

    monkeypatch.setattr(RunWriter, "upsert", cancelled_while_merging)
    with pytest.raises(asyncio.CancelledError):
        sync(sim, tmp_path, task_seen)
    assert merging, "no list batch of test_takers was merged"
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert (attempt.status, attempt.reason) == ("failed", INTERRUPTED)
    recorded = recorded_run(paths, attempt.run_id)
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        test_takers = con.execute("SELECT count(*) FROM test_takers").fetchall()[0][0]
    assert recorded == [("failed", INTERRUPTED)]
    assert test_takers == merging[0]  # the batch that was merging committed
    assert lock_is_free(paths)


def start_a_sync_to_abandon(sim, data):
    """A sync on a loop of its own, its coroutine at hand: the test closes it (GeneratorExit) as
    garbage collection does once a second interrupt has broken asyncio.run's teardown."""
    loop = asyncio.new_event_loop()
    client = JofiClient.from_env("live", base_url=sim.base_url)
    loop.run_until_complete(client.__aenter__())
    syncing = run_sync(client, WarehouseStore(data, "live"), SyncOptions())
    return loop, client, syncing, loop.create_task(syncing)


def clean_up_the_abandoned(loop, client, task) -> None:
    task._log_destroy_pending = False  # abandoned on purpose: its coroutine is closed
    loop.run_until_complete(client.__aexit__(None, None, None))
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    if task.done() and not task.cancelled():
        task.exception()  # the wake-up of a closed coroutine: nothing to report


def test_a_sync_closed_while_it_publishes_waits_for_the_publish_and_records_what_is_true(sim, tmp_path, monkeypatch, synced_live):
    """A second interrupt breaks out of asyncio.run's teardown (the in-process Dagster path) while
    the publish runs; the abandoned coroutine is closed later (GeneratorExit, at garbage collection).
    It awaited again ("coroutine ignored GeneratorExit"), and that RuntimeError was recorded as the
    publish's own error: the attempt and the sync_runs row said failed of a run that published."""
    paths = ModePaths.of("live", tmp_path)
    copy_into(synced_live, tmp_path)  # a first run behind it: the subject is the next one
    before = current_version(paths)
    sim.advance(days=2)
    publishing, closing = threading.Event(), threading.Event()
    swap = publish_module.swap_symlink

    def closed_just_before_the_switch(link, target, **how):
        if link == paths.current and not publishing.is_set():
            publishing.set()
            closing.wait(10)
            time.sleep(LET_THE_CANCELLATION_ACT)  # the close goes on meanwhile (if it would not wait)
        return swap(link, target, **how)

    monkeypatch.setattr(publish_module, "swap_symlink", closed_just_before_the_switch)
    loop, client, syncing, task = start_a_sync_to_abandon(sim, tmp_path)
    loop.run_until_complete(asyncio.to_thread(publishing.wait, 30))
    assert publishing.is_set() and not task.done()
    closing.set()
    with pytest.raises(GeneratorExit):  # let through, as close() expects
        syncing.throw(GeneratorExit)  # what close() (garbage collection) does, showing what comes out
    clean_up_the_abandoned(loop, client, task)

    assert current_version(paths) != before  # the publish went through
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert (attempt.status, attempt.reason) == ("succeeded", None), attempt
    recorded = recorded_run(paths, attempt.run_id)
    assert recorded == [("succeeded", None)]
    assert lock_is_free(paths)


def test_a_sync_closed_while_a_by_id_batch_merges_waits_for_the_merge_before_it_records(sim, tmp_path, monkeypatch):
    """Closed (GeneratorExit, after a second interrupt) while a fan-out's batch merges in a task of
    its own: the run recorded itself through, closed and unlocked the connection the merge thread
    still used ("connection is busy", the batch lost, the lock free under a running merge)."""
    paths = ModePaths.of("live", tmp_path)
    merging, closing = threading.Event(), threading.Event()
    merged: list[int] = []
    in_drain: list[bool] = [False]  # the fan-out has every answer and waits for its batches
    upsert = RunWriter.upsert

    def slow_merge(writer, entity, objects, synced_at, **kwargs):
        if entity == "scorecards" and in_drain[0] and not merging.is_set():  # a batch the fan-out waits for
            merging.set()
            closing.wait(10)
            busy_until = time.monotonic() + LET_THE_CANCELLATION_ACT
            while time.monotonic() < busy_until:  # a large batch: the merge keeps the connection busy
                writer.query("SELECT count(*) FROM sync_runs")
            counts = upsert(writer, entity, objects, synced_at, **kwargs)
            merged.append(len(objects))
            return counts
        return upsert(writer, entity, objects, synced_at, **kwargs)

    drain = PipelinedWrites.drain

    async def noted_drain(writes):
        in_drain[0] = True
        try:
            await drain(writes)
        finally:
            in_drain[0] = False

    monkeypatch.setattr(RunWriter, "upsert", slow_merge)
    monkeypatch.setattr(PipelinedWrites, "drain", noted_drain)
    loop, client, syncing, task = start_a_sync_to_abandon(sim, tmp_path)
    loop.run_until_complete(asyncio.to_thread(merging.wait, 30))
    assert merging.is_set() and in_drain[0] and not task.done()
    closing.set()
    with pytest.raises(GeneratorExit):  # let through, as close() expects
        syncing.throw(GeneratorExit)  # what close() (garbage collection) does
    assert merged, "the run recorded itself and let go of the connection before the merge ended"
    assert lock_is_free(paths)
    clean_up_the_abandoned(loop, client, task)

    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert attempt.status == "failed", attempt
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        recorded = con.execute("SELECT status FROM sync_runs WHERE run_id = ?", [attempt.run_id]).fetchall()
        scorecards = con.execute("SELECT count(*) FROM scorecards").fetchall()[0][0]
    assert recorded == [("failed",)]
    assert scorecards >= merged[0] > 0  # the batch that was merging committed
    monkeypatch.setattr(RunWriter, "upsert", upsert)
    assert sync(sim, tmp_path).status == "succeeded"


def test_an_interrupted_command_does_not_claim_another_process_publish(sim, tmp_path, monkeypatch):
    """Its own sync was interrupted before it published; another sync of the mode (a scheduled
    run, say) recorded a publish meanwhile: that publish is not this command's to claim."""
    log = AttemptLog(ModePaths.of("live", tmp_path).attempts)

    def another_published_then_this_one_is_interrupted(writer):
        now = utc_now()
        log.record(Attempt("live", "live-another-process", "succeeded", now, now))
        raise dg.DagsterExecutionInterruptedError()  # what Dagster's signal handler raises on Ctrl-C

    for name, value in sim.env().items():  # the URL and keys, as the CLI's run reads them
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(RunWriter, "publish", another_published_then_this_one_is_interrupted)
    with pytest.raises(SyncJobFailed) as failed:
        sync_mode("live", data_dir=tmp_path, instance=dg.DagsterInstance.ephemeral())
    assert str(failed.value) == f"live sync failed: {INTERRUPTED}"


def test_an_interrupted_command_whose_sync_has_not_recorded_its_end_says_it_is_not_known(tmp_path):
    """A second interrupt can end the command while its publish still runs: not "nothing was published"."""
    paths = ModePaths.of("live", tmp_path)
    now = utc_now()
    AttemptLog(paths.attempts).record(Attempt("live", "live-another-process", "succeeded", now, now))
    assert interrupted_reason(paths, ("live-this-command",)) == NOT_KNOWN_YET
    assert interrupted_reason(paths, ()) == INTERRUPTED  # it never opened its writer: nothing it did was published


@pytest.mark.parametrize("entity", ["scorecards", "test_takers"])  # a planned fan-out; the details asked while lists page
def test_a_sync_closed_while_its_requests_are_in_flight_records_the_interruption(sim, tmp_path, monkeypatch, synced_live, entity):
    """Closed (GeneratorExit, after a second interrupt) while a fan-out still waited for answers: its
    clean-up awaited the cancelled requests and the pending batches, so Python turned the close into
    "RuntimeError: coroutine ignored GeneratorExit", and the run was not recorded as interrupted.
    The test takers' details run in a task of their own (sync/early_details.py): cancelled from outside."""
    paths = ModePaths.of("live", tmp_path)
    copy_into(synced_live, tmp_path)  # a first run behind it: the subject is the next one
    sim.advance(days=2)
    asking = threading.Event()
    unanswered: list[asyncio.Task] = []
    get = JofiClient.get

    async def unanswered_scorecards(client, asked, key=None):
        if asked == entity:
            unanswered.append(asyncio.current_task())
            asking.set()
            await asyncio.Event().wait()  # no answer comes: the close finds the requests in flight
        return await get(client, asked, key)

    monkeypatch.setattr(JofiClient, "get", unanswered_scorecards)
    loop, client, syncing, task = start_a_sync_to_abandon(sim, tmp_path)
    loop.run_until_complete(asyncio.to_thread(asking.wait, 30))
    assert asking.is_set() and not task.done()
    with pytest.raises(GeneratorExit):  # let through, as close() expects (not "ignored GeneratorExit")
        syncing.throw(GeneratorExit)  # what close() (garbage collection) does
    assert lock_is_free(paths)
    assert unanswered and all(request.cancelling() for request in unanswered)  # none left pending
    clean_up_the_abandoned(loop, client, task)

    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert attempt.status == "failed" and "GeneratorExit" not in (attempt.reason or ""), attempt
    assert attempt.reason == INTERRUPTED, attempt
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        recorded = con.execute("SELECT status FROM sync_runs WHERE run_id = ?", [attempt.run_id]).fetchall()
    assert recorded == [("failed",)]
    monkeypatch.setattr(JofiClient, "get", get)
    assert sync(sim, tmp_path).status == "succeeded"


def test_a_sync_closed_after_its_loop_closed_while_details_are_asked_records_the_interruption(sim, tmp_path, monkeypatch):
    """As a real second interrupt: asyncio.run's teardown has closed the loop before garbage
    collection closes the coroutine, which waits for the test takers' details asked while the lists
    paged (sync/early_details.py). Cancelling them must not raise "Event loop is closed" in place of
    the GeneratorExit: the attempt then read as a failure of its own, not as the interruption."""
    from jofi_pipeline.sync.early_details import EarlyDetails

    paths = ModePaths.of("live", tmp_path)
    listed = threading.Event()
    get, real_listed = JofiClient.get, EarlyDetails.listed

    async def unanswered_details(client, entity, key=None):
        if entity == "test_takers":
            await asyncio.Event().wait()
        return await get(client, entity, key)

    def noted(early):
        real_listed(early)
        listed.set()

    monkeypatch.setattr(JofiClient, "get", unanswered_details)
    monkeypatch.setattr(EarlyDetails, "listed", noted)
    loop, client, syncing, task = start_a_sync_to_abandon(sim, tmp_path)
    loop.run_until_complete(asyncio.to_thread(listed.wait, 30))
    loop.run_until_complete(asyncio.sleep(0.3))  # every list read: the run waits for the details
    assert listed.is_set() and not task.done()
    closed_as_a_second_interrupt(paths, loop, client, syncing, task, loop_closed=True)
    monkeypatch.setattr(JofiClient, "get", get)
    assert sync(sim, tmp_path).status == "succeeded"


def closed_as_a_second_interrupt(paths, loop, client, syncing, task, *, loop_closed: bool) -> None:
    """Close the abandoned sync's coroutine (after its loop closed, as asyncio.run's teardown
    leaves it, or with the loop still running): the close must come through as itself, the lock be
    let go and the attempt read as the interruption."""
    if loop_closed:
        loop.run_until_complete(client.__aexit__(None, None, None))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    with pytest.raises(GeneratorExit):  # let through, as close() expects
        syncing.throw(GeneratorExit)
    task._log_destroy_pending = False  # abandoned on purpose: its coroutine is closed
    assert lock_is_free(paths)
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert attempt.status == "failed" and attempt.reason == INTERRUPTED, attempt
    if not loop_closed:
        clean_up_the_abandoned(loop, client, task)


@pytest.mark.parametrize("loop_closed", [False, True], ids=["loop running", "loop closed"])
def test_a_sync_closed_while_its_lists_still_page_records_the_interruption(sim, tmp_path, monkeypatch, loop_closed):
    """Closed (a second interrupt) while a list still pages and the details are asked: the close
    must come through as itself. Loop running: the list reads were awaited in the close ("coroutine
    ignored GeneratorExit"). Loop closed: the pages queue's clean-up raised "Event loop is closed"
    in its place, and the attempt read as that failure, not as the interruption."""
    paths = ModePaths.of("live", tmp_path)
    asked = threading.Event()
    get, real_list = JofiClient.get, JofiClient.list

    async def unanswered_details(client, entity, key=None):
        if entity == "test_takers":
            asked.set()
            await asyncio.Event().wait()
        return await get(client, entity, key)

    async def endless_invitations(client, entity, on_page=None):
        if entity == "invitations":
            await asyncio.Event().wait()  # this list never ends: the run stays in read_lists
        return await real_list(client, entity, on_page=on_page)

    monkeypatch.setattr(JofiClient, "get", unanswered_details)
    monkeypatch.setattr(JofiClient, "list", endless_invitations)
    loop, client, syncing, task = start_a_sync_to_abandon(sim, tmp_path)
    loop.run_until_complete(asyncio.to_thread(asked.wait, 30))
    loop.run_until_complete(asyncio.sleep(0.3))  # the other lists read: the run waits for pages
    assert asked.is_set() and not task.done()
    closed_as_a_second_interrupt(paths, loop, client, syncing, task, loop_closed=loop_closed)
    monkeypatch.setattr(JofiClient, "get", get)
    monkeypatch.setattr(JofiClient, "list", real_list)
    assert sync(sim, tmp_path).status == "succeeded"
