"""Issue 12, item 6: what a GET by id did not bring back is remembered (warehouse fetch_outcomes).

- A 404 for an id never held is "not found", not "marked deleted": it is remembered with its
  inputs (the rows that refer to it) and not asked again until they change.
- A record that keeps failing (after retries) is quarantined after QUARANTINE_AFTER_RUNS runs: no
  longer asked, it no longer makes runs partial; `status` shows it with its reason; a full
  refresh asks again, and once it is fetched it is forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from jofi_pipeline.analyst import status_text
from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.warehouse import ModePaths, WarehouseStore
from jofi_pipeline.warehouse.tables import QUARANTINE_AFTER_RUNS
from jofi_pipeline_tests.errors.helpers import fast_sync

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(test_takers=10, seed=31) as sim:
        yield sim


@pytest.fixture
def sim(small, monkeypatch, caplog) -> SimulatorProcess:
    small.clear_faults()
    monkeypatch.setenv(ENV_LIVE_KEY, small.live_key)
    caplog.set_level(logging.INFO, logger="jofi_pipeline.sync")
    return small


def _outcomes(data: Path) -> dict[tuple[str, str], tuple]:
    with duckdb.connect(str(ModePaths(data, "live").work_db), read_only=True) as con:
        rows = con.execute("SELECT entity, record_key, outcome, failed_runs, inputs, run_id, error FROM fetch_outcomes").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def _messages(caplog) -> str:
    text = "\n".join(r.getMessage() for r in caplog.records)
    caplog.clear()
    return text


def test_a_404_for_an_id_never_held_is_not_found_and_not_asked_again_until_its_inputs_change(sim, tmp_path, monkeypatch, caplog):
    truth = sim.truth("live")
    referring = next(i for i in truth["invitations"] if i.get("test_taker_id"))
    gone = referring["test_taker_id"]  # JOFI never lists it and answers 404 for it; the invitation still names it
    sim.set_faults(not_found_ids=[gone])

    first = fast_sync(sim, "live", tmp_path, monkeypatch)
    log = _messages(caplog)
    assert f"test_takers: 1 not found at JOFI (never held; asked again when what refers to them changes): {gone}" in log
    assert "marked deleted" not in log
    assert first.status == "succeeded"
    outcome, failed_runs, inputs, run_id, error = _outcomes(tmp_path)[("test_takers", str(gone))]
    assert (outcome, failed_runs, run_id) == ("not_found", 0, first.run_id) and inputs and "404" in error
    with duckdb.connect(str(ModePaths(tmp_path, "live").work_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM test_takers WHERE id = ?", [gone]).fetchone() == (0,)

    fast_sync(sim, "live", tmp_path, monkeypatch)  # nothing about it changed: not asked
    log = _messages(caplog)
    assert "test_takers: 1 not asked again (not found or quarantined, inputs unchanged)" in log
    assert "not found at JOFI" not in log
    assert _outcomes(tmp_path)[("test_takers", str(gone))][3] == first.run_id

    # The invitation that names it changes (as a list would bring it): a reason to ask again.
    now = datetime.now(UTC)
    with WarehouseStore(tmp_path, "live").open_run("edit", now) as writer:
        writer.upsert("invitations", [{**referring, "mode": "live", "note": "resent"}], now)
    third = fast_sync(sim, "live", tmp_path, monkeypatch)
    assert f"1 not found at JOFI (never held" in _messages(caplog)
    after = _outcomes(tmp_path)[("test_takers", str(gone))]
    assert after[3] == third.run_id and after[2] != inputs  # asked again, remembered with the new inputs

    sim.clear_faults()  # it turns up after all: fetched, stored, forgotten
    fast_sync(sim, "live", tmp_path, monkeypatch, full_refresh=True)
    assert ("test_takers", str(gone)) not in _outcomes(tmp_path)


def test_a_record_that_keeps_failing_is_quarantined_and_never_fails_a_run(sim, tmp_path, monkeypatch, caplog):
    sim.set_faults(routes=["/job-fit-report"], error_rate=1.0, error_statuses=[500])
    reports = []
    for _ in range(QUARANTINE_AFTER_RUNS):
        reports.append(fast_sync(sim, "live", tmp_path, monkeypatch))
    failing = len(_outcomes(tmp_path))
    assert failing > 0
    # Before quarantine the failures make a run partial (published, the rest asked again) ...
    assert [r.status for r in reports[:-1]] == ["partial"] * (QUARANTINE_AFTER_RUNS - 1)
    # ... the run in which they are quarantined no longer counts them, nor does any later one.
    assert reports[-1].status == "succeeded" and sum(len(v) for v in reports[-1].quarantined.values()) == failing
    assert "quarantined after failing" in _messages(caplog)
    rows = _outcomes(tmp_path)
    assert {(k[0], v[0], v[1]) for k, v in rows.items()} == {("job_fit_reports", "failing", QUARANTINE_AFTER_RUNS)}
    assert all("JOFI server error" in v[4] and "/job-fit-report" in v[4] for v in rows.values())

    route = "/test-takers/{test_taker_id}/job-fit-report"
    assert reports[0].requests[route] >= failing  # asked (and retried) while not quarantined
    later = fast_sync(sim, "live", tmp_path, monkeypatch)
    assert later.status == "succeeded" and later.requests.get(route, 0) == 0  # quarantined: not asked
    status = status_text(data_dir=tmp_path).split("== test")[0]
    assert f"quarantined ({failing}; every attempt failed" in status
    assert "jofi-pipeline sync --mode live --full" in status and "JOFI server error (500" in status

    sim.clear_faults()  # a full refresh asks again; fetched, they are forgotten
    full = fast_sync(sim, "live", tmp_path, monkeypatch, full_refresh=True)
    assert full.status == "succeeded" and _outcomes(tmp_path) == {}
    assert full.inserted.get("job_fit_reports", 0) == failing
