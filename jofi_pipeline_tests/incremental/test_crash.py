"""A sync killed mid-fan-out loses at most the batches in flight: the next run does not ask again
for what was committed, because each batch commits with its fetch_state rows."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from jofi_pipeline_tests.e2e.helpers import sync
from jofi_pipeline_tests.incremental.helpers import SCORECARD, completed, published, requests, short_names, work_db

BATCH, CONCURRENCY = 8, 4


def start_sync_to_kill(sim, data_dir) -> multiprocessing.Process:
    """The sync in a process of its own to kill -9: forked from this one, which has imported the
    sync already (a fresh interpreter spent about a second of CPU importing it again)."""
    proc = multiprocessing.get_context("fork").Process(
        target=sync, args=(sim, "live", data_dir), kwargs={"batch_size": BATCH, "max_concurrency": CONCURRENCY},
        daemon=True,
    )
    proc.start()
    return proc


def test_a_sync_killed_mid_fan_out_is_resumed_without_refetching_committed_batches(world, tmp_path):
    sim = world(latency_ms=25, test_takers=40)  # 152 scorecards: the kill lands mid fan-out, batches both sides
    truth = sim.truth("live")
    total = sum(1 for t in truth["test_takers"] if completed(t)) * len(short_names(truth))
    assert total > 100

    proc = start_sync_to_kill(sim, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while requests(sim, SCORECARD) < total // 2:
            assert proc.exitcode is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:  # killed here whatever happened: a failed wait leaves no sync writing into tmp_path
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    time.sleep(0.5)  # requests the dead process left in flight are still answered (and counted) by the server
    asked_before_kill = requests(sim, SCORECARD)
    assert asked_before_kill < total
    assert not (tmp_path / "live" / "jofi.duckdb").exists(), "a killed run must not publish"

    sim.reset_stats()
    report = sync(sim, "live", tmp_path)
    asked_again = requests(sim, SCORECARD)
    with work_db(tmp_path) as con:
        committed_by_killed_run = con.execute(
            "SELECT count(*) FROM fetch_state WHERE kind = 'scorecard' AND run_id <> ?", [report.run_id]
        ).fetchone()[0]
    assert committed_by_killed_run > 0
    assert asked_again == total - committed_by_killed_run
    # Lost = asked before the kill but not committed: only the batches in flight (one being
    # written, one filling) plus the requests in flight.
    assert asked_before_kill - committed_by_killed_run <= 2 * BATCH + CONCURRENCY
    with published(tmp_path) as con:
        assert con.execute("SELECT count(*) FROM scorecards").fetchone()[0] == total
