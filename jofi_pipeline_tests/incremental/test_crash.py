"""A sync killed mid-fan-out loses at most the batches in flight: the next run does not ask again
for what was committed, because each batch commits with its fetch_state rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from jofi_pipeline_tests.e2e.helpers import sync
from jofi_pipeline_tests.incremental.helpers import SCORECARD, completed, published, requests, short_names, work_db

BATCH, CONCURRENCY = 8, 4

SYNC_SCRIPT = """
import sys
from pathlib import Path
from jofi_pipeline_tests.e2e.helpers import sync
sync(type("Sim", (), {"base_url": sys.argv[1]}), "live", Path(sys.argv[2]),
     batch_size=int(sys.argv[3]), max_concurrency=int(sys.argv[4]))
"""


def test_a_sync_killed_mid_fan_out_is_resumed_without_refetching_committed_batches(world, tmp_path):
    sim = world(latency_ms=25)
    truth = sim.truth("live")
    total = sum(1 for t in truth["test_takers"] if completed(t)) * len(short_names(truth))
    assert total > 100

    proc = subprocess.Popen([sys.executable, "-c", SYNC_SCRIPT, sim.base_url, str(tmp_path), str(BATCH), str(CONCURRENCY)],
                            env=os.environ.copy())
    deadline = time.monotonic() + 60
    while requests(sim, SCORECARD) < total // 2:
        assert proc.poll() is None, "the sync ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
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
