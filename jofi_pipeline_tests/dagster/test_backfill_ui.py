"""The UI's view, through its own GraphQL on one `dagster dev` shared by the module's tests.

`dagster dev` runs the webserver, the daemon (which turns backfills into runs and ticks the
freshness sensor) and a code server, exactly as a person would start it from the README, on the
project's dagster.yaml (its folders moved to a temporary home). It ignores SIGINT when started
from a script, so it gets its own process group and is stopped by signalling that group. Its
instance is also the one the CLI records in (same DAGSTER_HOME).

The daemon looks for backfills every 30 s (a constant of Dagster's), and a backfill ends at the
first look after its runs have: each backfill waited for on its own cost a minute or more. Both
backfills are launched together, before any test waits on one; the project's queue (one run per
mode at a time) runs their two test-mode runs one after the other, as it would for a person.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from jofi_pipeline.harness.dagster_home import write_home
from jofi_pipeline.runs import LOCATION_NAME
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_LABEL = f"__repository__@{LOCATION_NAME}"

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

JOB_RUNS = """
query JobRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId pipelineName status tags { key value } } }
  }
}
"""

ASSET_GRAPH = """
query { assetNodes { assetKey { path } dependencyKeys { path } } }
"""

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs { runId status startTime endTime tags { key value } } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_dev(_session_simulator, tmp_path_factory):
    simulator = _session_simulator
    tmp_path = tmp_path_factory.mktemp("dagster_dev")
    home = write_home(tmp_path / "dagster_home")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        ENV_BASE_URL: simulator.base_url,
        ENV_LIVE_KEY: simulator.live_key,
        ENV_TEST_KEY: simulator.test_key,
        ENV_DATA_DIR: str(tmp_path / "data"),
    }
    dagster = Path(sys.executable).parent / "dagster"
    log = (tmp_path / "dagster-dev.log").open("w")
    proc = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not start within 120 s")
        yield url, tmp_path / "data", env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:  # its graceful stop is not under test; it used to run out the whole wait (30 s of teardown)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


JOB_BACKFILL = {  # the job's page: Partitions tab, Materialize…, All, Launch backfill
    "selector": {"partitionSetName": "jofi_sync_partition_set",
                 "repositorySelector": {"repositoryName": "__repository__", "repositoryLocationName": LOCATION_NAME}},
    "partitionNames": ["live", "test"],
}
ASSET_BACKFILL = {  # the asset graph: the whole multi-asset (it cannot be subset: one sync writes every table and view)
    "assetSelection": [{"path": ["jofi", name]} for name in [*TABLES, *(v.name for v in VIEWS)]],
    "partitionNames": ["test"],
}


@pytest.fixture(scope="module")
def backfills(dagster_dev) -> dict[str, str]:
    """Both backfills launched at once, their ids by name: the daemon's next look starts the runs of both."""
    url, _, _ = dagster_dev
    return {"job": _launch(url, JOB_BACKFILL), "asset": _launch(url, ASSET_BACKFILL)}


def _graphql(url: str, query: str, variables: dict) -> dict:
    response = httpx.post(url, json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _launch(url: str, params: dict) -> str:
    """Launch a backfill as the UI does; its id."""
    deadline = time.monotonic() + 60
    while True:  # the code location may still be loading right after start-up
        launched = _graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] == "LaunchBackfillSuccess" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _finished(url: str, backfill_id: str) -> dict:
    """Wait for a backfill to finish; the finished backfill with its runs."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        backfill = _graphql(url, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            break
        time.sleep(2)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    return backfill


# Every run's tags and the sync run ids its materializations name (defs/assets.py's `sync_run_id`).
RUN_SYNCS = """
query { runsOrError { ... on Runs { results { runId tags { key value }
    assetMaterializations { metadataEntries { label ... on TextMetadataEntry { text } } } } } } }
"""


def _backfill_syncs(url: str) -> set[str]:
    """The sync run ids recorded by runs a backfill launched (not by the CLI's sync, also a Dagster run)."""
    ids = set()
    for run in _graphql(url, RUN_SYNCS, {})["runsOrError"]["results"]:
        if any(t["key"] == "dagster/backfill" for t in run["tags"]):
            ids |= {e["text"] for m in run["assetMaterializations"] for e in m["metadataEntries"] if e["label"] == "sync_run_id"}
    return ids


def _synced_by(url: str, run: dict, data_dir: Path, mode: str) -> list[tuple]:
    """The backfills' succeeded syncs recorded in `mode`'s published warehouse while `run` ran: the
    run's own alone, when the queue holds a mode's runs one at a time (without the limit, the
    module's two test-mode backfill runs overlapped, the second waiting on the writer, and each saw
    both). The CLI's sync, which may start while a backfill run runs, is not one of them."""
    with duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True) as con:
        started = con.execute(
            "SELECT run_id FROM sync_runs WHERE status = 'succeeded' AND epoch(started_at) BETWEEN ? AND ?",
            [run["startTime"], run["endTime"]],
        ).fetchall()
    ours = _backfill_syncs(url)
    return [row for row in started if row[0] in ours]


def _job_runs(url: str) -> list[dict]:
    """What the job's Runs page lists: its name and the code location's repository label."""
    return _graphql(url, JOB_RUNS, {"filter": {"pipelineName": "jofi_sync", "tags": [
        {"key": ".dagster/repository", "value": REPOSITORY_LABEL}]}})["runsOrError"]["results"]


def test_a_cli_sync_is_listed_on_the_jobs_runs_page(dagster_dev, backfills):
    """Run while the backfills wait for the daemon (so that the wait is not idle); should one of
    their test-mode runs hold the warehouse's writer, the CLI waits for it, as `--wait` says."""
    url, data_dir, env = dagster_dev
    cli = Path(sys.executable).parent / "jofi-pipeline"
    done = subprocess.run([str(cli), "sync", "--mode", "test", "--wait", "240"], env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = re.search(r"\(Dagster run ([0-9a-f]{8})", done.stdout).group(1)
    listed = [run for run in _job_runs(url) if run["runId"].startswith(run_id)]
    assert len(listed) == 1 and listed[0]["status"] == "SUCCESS"
    tags = {t["key"]: t["value"] for t in listed[0]["tags"]}
    assert tags["jofi/launched_by"] == "cli" and tags["jofi/mode"] == "test"


def test_the_ui_shows_the_lineage_from_the_api_to_the_views(dagster_dev):
    url, _, _ = dagster_dev
    nodes = _graphql(url, ASSET_GRAPH, {})["assetNodes"]
    parents = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
    assert parents["jofi/jofi_api"] == set()
    assert "jofi/jofi_api" in parents["jofi/invitations"]
    assert parents["jofi/scorecard_scores"] == {"jofi/scorecards"}
    assert "jofi/test_takers" in parents["jofi/test_taker_assessments"]
    assert "jofi/scorecard_scores" in parents["jofi/scores_long"]


def test_the_jobs_backfill_of_both_partitions_runs_jofi_sync_once_per_mode(dagster_dev, backfills):
    url, data_dir, _ = dagster_dev
    backfill = _finished(url, backfills["job"])
    statuses = sorted(run["status"] for run in backfill["runs"])
    assert statuses == ["SUCCESS", "SUCCESS"], backfill["runs"]
    listed = {run["runId"]: run for run in _job_runs(url)}
    for run in backfill["runs"]:
        tags = {t["key"]: t["value"] for t in listed[run["runId"]]["tags"]}
        assert tags["jofi/mode"] == tags["dagster/partition"]
    assert sorted(t["value"] for run in backfill["runs"] for t in run["tags"] if t["key"] == "dagster/partition") == ["live", "test"]

    for run in backfill["runs"]:
        mode = {t["key"]: t["value"] for t in run["tags"]}["dagster/partition"]
        assert len(_synced_by(url, run, data_dir, mode)) == 1, run
        with duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM invitations").fetchone()[0] > 0
            assert con.execute("SELECT DISTINCT _mode FROM invitations").fetchall() == [(mode,)]


def test_an_asset_backfill_run_is_tagged_with_its_mode(dagster_dev, backfills):
    """Materializing from the asset graph runs as __ASSET_JOB (Dagster's choice); it still says its mode."""
    url, data_dir, _ = dagster_dev
    backfill = _finished(url, backfills["asset"])
    (run,) = backfill["runs"]
    assert run["status"] == "SUCCESS"
    assert len(_synced_by(url, run, data_dir, "test")) == 1, run
    runs = _graphql(url, JOB_RUNS, {"filter": {"runIds": [run["runId"]]}})["runsOrError"]["results"]
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["jofi/mode"] == "test"


LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
TERMINATE_RUN = """
mutation Terminate($id: String!) {
  terminateRun(runId: $id) { __typename ... on TerminateRunFailure { message } ... on PythonError { message } }
}
"""
RUN_STATUS = "query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"
JOB_LAUNCH = {  # the job's Launchpad, partition `live`, Launch run
    "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__", "jobName": "jofi_sync"},
    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "live"}]},
}
HUNG_ROUTE = "/users"  # a list every run reads; held open so the run is surely mid-fetch when stopped


def _run_status(url: str, run_id: str, wanted: set[str], within: float) -> dict:
    deadline = time.monotonic() + within
    while (run := _graphql(url, RUN_STATUS, {"id": run_id})["runOrError"])["status"] not in wanted:
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {within:.0f} s (waited for {sorted(wanted)})"
        time.sleep(0.2)
    return run


def test_terminating_a_run_in_the_ui_stops_its_sync_at_once_publishes_nothing_and_the_next_run_completes(
    dagster_dev, backfills, _session_simulator
):
    """The Runs page's Terminate (and run monitoring's max runtime, the same request) on a
    `jofi_sync` run whose sync is waiting on JOFI: the run worker executes its one step in process
    (defs/executor.py), so the sync itself is interrupted. The run ends CANCELED in seconds, asks
    JOFI nothing more, leaves the published warehouse byte for byte as it was and the writer free,
    says why in `status`, and a sync right after completes."""
    from jofi_pipeline.harness.published_state import files_digest
    from jofi_pipeline.sync.explain import INTERRUPTED

    url, data_dir, env = dagster_dev
    _finished(url, backfills["job"])  # the live slot is free and live has a published version
    _finished(url, backfills["asset"])
    sim = _session_simulator
    before = files_digest(data_dir / "live")
    sim.set_faults(hang_rate=1.0, hang_seconds=120.0, routes=[HUNG_ROUTE], modes=["live"])
    try:
        hung = sim.stats()["faults_fired"].get("hang", 0)
        let_go = sim.stats()["abandoned"]["total"]
        launched = _graphql(url, LAUNCH_RUN, {"params": JOB_LAUNCH})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        assert _run_status(url, run_id, {"STARTED", "CANCELED", "FAILURE", "SUCCESS"}, within=120)["status"] == "STARTED"
        deadline = time.monotonic() + 60
        while sim.stats()["faults_fired"].get("hang", 0) == hung:  # counted as the request comes in
            assert time.monotonic() < deadline, "the run's sync never asked for the hung list"
            time.sleep(0.2)
        asked = sim.stats()["total"]
        while True:  # answers are counted as they start: let the other lists' answers settle first
            time.sleep(0.5)
            settled, asked = asked, sim.stats()["total"]
            if settled == asked:
                break

        stopping = time.monotonic()
        terminated = _graphql(url, TERMINATE_RUN, {"id": run_id})["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        run = _run_status(url, run_id, {"CANCELED", "FAILURE", "SUCCESS"}, within=60)
        assert run["status"] == "CANCELED", run
        assert time.monotonic() - stopping < 30, "a stopped run must not wait for JOFI's hung answer (120 s)"
        time.sleep(1.0)
        assert sim.stats()["total"] == asked, "the stopped sync went on asking JOFI"
        assert sim.stats()["faults_fired"].get("hang", 0) == hung + 1, "the stopped sync asked for the hung list again"
        # The stopped sync hung up, so the simulator lets the hung request go now, not 120 s later
        # (when its answer would be counted in another test's stats on this worker).
        deadline = time.monotonic() + 15
        while (abandoned := sim.stats()["abandoned"])["total"] < let_go + 1:
            assert time.monotonic() < deadline, "the stopped sync left its hung request open"
            time.sleep(0.1)
        assert abandoned["total"] == let_go + 1 and abandoned["routes"].get(f"GET {HUNG_ROUTE}"), abandoned
    finally:
        sim.clear_faults()
    assert files_digest(data_dir / "live") == before, "a stopped run changed the published warehouse"

    cli = Path(sys.executable).parent / "jofi-pipeline"
    status = subprocess.run([str(cli), "status"], env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    live = status.stdout.split("== live", 1)[1].split("== ", 1)[0]
    assert "last attempt: FAILED" in live and INTERRUPTED in " ".join(live.split()), live

    done = subprocess.run([str(cli), "sync", "--mode", "live"], env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # the writer lock was let go
    with duckdb.connect(str(data_dir / "live" / "jofi.duckdb"), read_only=True) as con:
        stopped = con.execute(
            "SELECT status, error FROM sync_runs WHERE epoch(started_at) BETWEEN ? AND ?", [run["startTime"], run["endTime"]]
        ).fetchall()
    assert stopped == [("failed", INTERRUPTED)], stopped
