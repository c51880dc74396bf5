"""Issue 12, item 3: `status` shows each mode's last attempt (succeeded / partial / failed /
refused, when, why) before the last published run, and can read it while a sync holds the
working database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from jofi_pipeline.analyst import status_text
from jofi_pipeline.runs import sync_mode
from jofi_pipeline.sync_refusal import SyncRefused
from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline_tests.errors.helpers import fast_sync

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(test_takers=10, seed=41) as sim:
        yield sim


def _live(data) -> list[str]:
    text = status_text(data_dir=data)
    return text.split("== test")[0].splitlines()[1:]


def test_status_shows_the_last_attempt_then_the_last_published_run(small, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_LIVE_KEY, small.live_key)
    small.set_faults(routes=["/job-fit-report"], error_rate=1.0, error_statuses=[500])
    partial = fast_sync(small, "live", tmp_path, monkeypatch)
    lines = _live(tmp_path)
    assert lines[0].startswith("   last attempt: partial ") and f"(run {partial.run_id}, " in lines[0]
    assert lines[0].endswith(f": {partial.error}") and "job_fit_reports (e.g." in lines[0] and "could not be fetched" in lines[0]
    assert lines[1].startswith(f"   last published run {partial.run_id}: partial")

    small.clear_faults()
    good = fast_sync(small, "live", tmp_path, monkeypatch)
    lines = _live(tmp_path)
    assert re.fullmatch(rf"   last attempt: succeeded \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(run {good.run_id}, \d+s\)", lines[0])
    assert lines[1].startswith(f"   last published run {good.run_id}: succeeded")

    small.set_faults(routes=["/teams"], error_rate=1.0, error_statuses=[503])
    with pytest.raises(SyncFailed) as failed:
        fast_sync(small, "live", tmp_path, monkeypatch)
    lines = _live(tmp_path)
    assert lines[0].startswith("   last attempt: FAILED ") and f"(run {failed.value.run_id}, " in lines[0]
    assert lines[0].endswith(f": {failed.value.reason}") and "GET /teams: JOFI server error (503" in lines[0]
    assert lines[1].startswith(f"   last published run {good.run_id}: succeeded")  # what analysts still see
    small.clear_faults()


def test_status_reads_attempts_while_a_sync_holds_the_warehouse_and_shows_a_refusal(small, tmp_path, monkeypatch):
    small.clear_faults()
    monkeypatch.setenv(ENV_LIVE_KEY, small.live_key)
    fast_sync(small, "live", tmp_path, monkeypatch)
    with WarehouseStore(tmp_path, "live").open_run("live-running-now", datetime.now(UTC)):  # a sync under way
        with pytest.raises(SyncRefused):
            sync_mode("live", data_dir=tmp_path)  # the CLI's path: refused before any Dagster run
        lines = _live(tmp_path)
    assert lines[0].startswith("   last attempt: REFUSED ")
    assert "being written by another sync (run 'live-running-now'" in lines[0]
    assert lines[1].startswith("   last published run ") and ": succeeded" in lines[1]
