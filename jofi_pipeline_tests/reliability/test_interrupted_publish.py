"""A sync interrupted around its publish says what is true, and no second writer starts under it.

A cancellation (a stopped Dagster run, Ctrl-C) stops the coroutine that awaits a worker thread,
not the thread: a publish begun must end (published, or not) before the run records its outcome,
closes its connection and lets the writer lock go (sync/uninterrupted.py); and an interruption
after the publish must not be told as "nothing was published" (sync/interrupted.py). A real
simulator, real DuckDB files; the interruptions are injected at the exact step they hit.
"""

from __future__ import annotations

import asyncio
import os
import time

import dagster as dg
import duckdb
import pytest

from jofi_pipeline.api import JofiClient
from jofi_pipeline.runs import sync_mode
from jofi_pipeline.sync import SyncOptions, run_sync
from jofi_pipeline.sync.explain import INTERRUPTED
from jofi_pipeline.sync_refusal import SyncJobFailed
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, WarehouseBusyError, WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse.attempts import AttemptLog
from jofi_pipeline.warehouse.lock import ModeLock
from jofi_pipeline.warehouse.store import RunWriter

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


def test_a_sync_cancelled_while_it_publishes_lets_the_publish_finish_and_says_it_published(sim, tmp_path, monkeypatch):
    paths = ModePaths.of("live", tmp_path)
    sync(sim, tmp_path)
    before = current_version(paths)
    sim.advance(days=2)
    task_seen: list = []
    seen: dict = {}
    swap = publish_module.swap_symlink

    def cancelled_just_before_the_switch(link, target):
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
        return swap(link, target)

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
            loop, task = task_seen[0]
            loop.call_soon_threadsafe(task.cancel)
            merging.append(entity)
            deadline = time.monotonic() + LET_THE_CANCELLATION_ACT + 10
            while not task.cancelling() and time.monotonic() < deadline:
                time.sleep(0.01)
            busy_until = time.monotonic() + LET_THE_CANCELLATION_ACT
            while time.monotonic() < busy_until:  # a large batch: the merge keeps the connection busy
                writer.query("SELECT count(*) FROM sync_runs")
        return upsert(writer, entity, objects, synced_at, **kwargs)

    monkeypatch.setattr(RunWriter, "upsert", cancelled_while_merging)
    with pytest.raises(asyncio.CancelledError):
        sync(sim, tmp_path, task_seen)
    attempt = AttemptLog(paths.attempts).recent("live", 1)[0]
    assert (attempt.status, attempt.reason) == ("failed", INTERRUPTED)
    with duckdb.connect(str(paths.work_db), read_only=True) as con:
        recorded = con.execute("SELECT status, error FROM sync_runs WHERE run_id = ?", [attempt.run_id]).fetchall()
        scorecards = con.execute("SELECT count(*) FROM scorecards").fetchall()[0][0]
    assert recorded == [("failed", INTERRUPTED)]
    assert scorecards > 0  # the batch that was merging committed
    assert lock_is_free(paths)
    monkeypatch.setattr(RunWriter, "upsert", upsert)
    assert sync(sim, tmp_path).status == "succeeded"
