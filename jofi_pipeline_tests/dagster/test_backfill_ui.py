"""A backfill of both partitions, launched the way the UI launches it: GraphQL on `dagster dev`.

`dagster dev` runs the webserver, the daemon (which turns the backfill into runs) and a code
server, exactly as a person would start it from the README. It ignores SIGINT when started from
a script, so it gets its own process group and is stopped by signalling that group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.warehouse.tables import TABLES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

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

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs { runId status tags { key value } } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dagster_dev(simulator, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
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
        yield url, tmp_path / "data"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _graphql(url: str, query: str, variables: dict) -> dict:
    response = httpx.post(url, json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_backfill_of_both_partitions_from_the_ui_succeeds(dagster_dev):
    url, data_dir = dagster_dev
    params = {
        "assetSelection": [{"path": ["jofi", name]} for name in TABLES],
        "partitionNames": ["live", "test"],
    }
    deadline = time.monotonic() + 60
    while True:  # the code location may still be loading right after start-up
        launched = _graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] == "LaunchBackfillSuccess" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        backfill = _graphql(url, BACKFILL_STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            break
        time.sleep(2)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    statuses = sorted(run["status"] for run in backfill["runs"])
    assert statuses == ["SUCCESS", "SUCCESS"], backfill["runs"]

    for mode in ("live", "test"):
        with duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM invitations").fetchone()[0] > 0
            assert con.execute("SELECT DISTINCT _mode FROM invitations").fetchall() == [(mode,)]
