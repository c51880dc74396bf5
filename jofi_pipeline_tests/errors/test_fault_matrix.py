"""Issue 12, item 1: every list route x (5xx, malformed body, wrong mode, key revoked mid-run).

The lists are read side by side; whichever fails, the one line a person reads names the route and
the cause (the env var to check for a refused key), never "ExceptionGroup", and it is the same line
in the sync's failure, in `sync_runs.error` and in the attempts record `status` shows. A subset runs
through the CLI and Dagster to show the same line in the CLI output and the Dagster failure event.
The published warehouse is byte-identical after every failed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from jofi_pipeline import entities
from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline_tests.e2e.helpers import tree_digest
from jofi_pipeline_tests.errors.cli import base_env, invoke, one_error
from jofi_pipeline_tests.errors.helpers import fast_sync, last_attempt, run_errors

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e

LIST_ROUTES = [entities.ENTITIES[name].list_route for name in entities.LISTS]

# fault name -> (the /_sim/faults settings for one route, what the line must say besides the route)
FAULTS = {
    "5xx": (lambda route: {"routes": [route], "error_rate": 1.0, "error_statuses": [503]}, ["JOFI server error", "503"]),
    "malformed": (lambda route: {"routes": [route], "malformed_rate": 1.0}, ["not valid JSON"]),
    "wrong_mode": (lambda route: {"routes": [route], "force_mode": "test"}, ["says mode 'test'", "live mode"]),
    # The key works for GET /accounts, then JOFI refuses it: revoked while the run is under way.
    "revoked": (
        lambda route: {"routes": ["/accounts", route], "revoke_after_requests": 1},
        ["refused the API key", "401", f"check {ENV_LIVE_KEY}"],
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[SimulatorProcess, Path]]:
    """One small simulator and one warehouse synced from it once (the cases only fail to change it)."""
    with SimulatorProcess(test_takers=10, seed=12) as sim:
        yield sim, tmp_path_factory.mktemp("matrix") / "data"


@pytest.fixture
def sim(world, monkeypatch) -> SimulatorProcess:
    sim, data = world
    sim.clear_faults()
    monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
    if not (data / "live" / "jofi.duckdb").exists():
        fast_sync(sim, "live", data, monkeypatch)
    return sim


def _assert_one_actionable_line(line: str, route: str, says: list[str]) -> None:
    assert f"GET {route}" in line, line
    assert all(part in line for part in says), (says, line)
    assert "ExceptionGroup" not in line and "TaskGroup" not in line and "sub-exception" not in line
    assert "\n" not in line


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_failing_list_read_is_one_line_naming_route_and_cause(sim, world, monkeypatch, route: str, fault: str):
    data = world[1]
    settings, says = FAULTS[fault]
    before = tree_digest(data / "live")
    sim.set_faults(**settings(route))
    with pytest.raises(SyncFailed) as caught:
        fast_sync(sim, "live", data, monkeypatch)
    reason = caught.value.reason
    _assert_one_actionable_line(reason, route, says)
    assert run_errors(data, "live")[caught.value.run_id] == reason  # sync_runs.error
    attempt = last_attempt(data, "live")
    assert (attempt.run_id, attempt.status, attempt.reason) == (caught.value.run_id, "failed", reason)
    assert tree_digest(data / "live") == before  # nothing published


@pytest.mark.parametrize(("fault", "route"), [("wrong_mode", "/invitations"), ("revoked", "/teams")])
def test_the_cli_and_the_dagster_failure_say_the_same_line(sim, world, monkeypatch, capsys, fault: str, route: str):
    data = world[1]
    settings, says = FAULTS[fault]
    sim.set_faults(**settings(route))
    env = base_env(data, **sim.env())
    result = invoke(["sync", "--mode", "live"], env, monkeypatch, capsys)
    line = one_error(result)
    reason = line.removeprefix("error: live sync failed: ")
    _assert_one_actionable_line(reason, route, says)
    attempt = last_attempt(data, "live")
    assert attempt.status == "failed" and attempt.reason == reason
    assert run_errors(data, "live")[attempt.run_id] == reason
    with dg.DagsterInstance.get() as instance:  # the CLI's run, in the instance the UI shows
        (run,) = instance.get_runs(limit=1)
        failures = [
            e.dagster_event.step_failure_data.user_failure_data.description
            for e in instance.all_logs(run.run_id)
            if e.dagster_event is not None and e.dagster_event.is_step_failure
        ]
    assert failures == [reason]
