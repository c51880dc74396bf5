"""Termination bench: `jofi_sync` runs launched and terminated through the Dagster UI's GraphQL
(what the Runs page's Terminate button and run monitoring's max runtime send) at seeded random
instants, on a `dagster dev` started as the README starts it. Prints one line per trial and a
summary.

    uv run --frozen python bench/ui_terminate.py [--trials 10] [--seed 7] [--test-takers 200] [--latency-ms 20]

A trial passes when the stopped run left the published warehouse exactly the state before or
after a run (observed as the kill -9 trials observe it: whole DuckDB/Parquet pair, unique keys,
clean history chains), sync_runs tells what happened in words (`succeeded` when it had published,
else `failed` with "interrupted", never a class name; nothing when the run was stopped before its
sync began), and the next run launched from the UI succeeds. The kill -9 trials (bench/chaos.py) cover the process dying; these cover Dagster's own
interruption reaching the sync wherever it runs.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import duckdb  # noqa: E402
import httpx  # noqa: E402

from jofi_pipeline.harness.dagster_home import write_home  # noqa: E402
from jofi_pipeline.harness.published_state import observe  # noqa: E402
from jofi_pipeline.runs import LOCATION_NAME  # noqa: E402
from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from jofi_pipeline.sync.explain import INTERRUPTED  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENDED = ("CANCELED", "FAILURE", "SUCCESS")
LAUNCH = """mutation L($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
TERMINATE = """mutation T($id: String!) { terminateRun(runId: $id) { __typename } }"""
STATUS = """query S($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"""
LIVE_RUN = {"selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__", "jobName": "jofi_sync"},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "live"}]}}


class Ui:
    """The UI's GraphQL endpoint of one `dagster dev`."""

    def __init__(self, url: str) -> None:
        self.url = url

    def ask(self, query: str, variables: dict) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        return response.json()["data"]

    def launch(self) -> str:
        deadline = time.monotonic() + 60
        while True:  # the code location may still be loading right after start-up
            launched = self.ask(LAUNCH, {"p": LIVE_RUN})["launchRun"]
            if launched["__typename"] == "LaunchRunSuccess":
                return launched["run"]["runId"]
            if time.monotonic() > deadline:
                raise RuntimeError(f"launching jofi_sync failed: {launched}")
            time.sleep(1)

    def status(self, run_id: str) -> dict:
        return self.ask(STATUS, {"id": run_id})["runOrError"]

    def wait(self, run_id: str, wanted: tuple[str, ...], within: float = 300) -> dict:
        deadline = time.monotonic() + within
        while (run := self.status(run_id))["status"] not in wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} still {run['status']} after {within:.0f} s")
            time.sleep(0.05)
        return run


def start_dagster_dev(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Ui]:
    """`dagster dev` on the project's dagster.yaml with its folders in `tmp` (its own process group)."""
    home = write_home(tmp / "dagster_home")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["DAGSTER_HOME"] = str(home)
    log = (tmp / "dagster-dev.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                return proc, Ui(f"http://127.0.0.1:{port}/graphql")
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"dagster dev did not start; see {tmp / 'dagster-dev.log'}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def recorded(live: Path, run: dict) -> list[tuple[str, str]]:
    """sync_runs rows (status, error) of the syncs that started while `run` ran."""
    with duckdb.connect(str(live / "jofi.duckdb"), read_only=True) as con:
        return con.execute("SELECT status, coalesce(error, '') FROM sync_runs WHERE epoch(started_at) BETWEEN ? AND ?",
                           [run["startTime"], run["endTime"]]).fetchall()


def trial(ui: Ui, sim: SimulatorProcess, live: Path, rng: random.Random, duration: float) -> tuple[dict, float]:
    sim.advance(1)  # new activity: the stopped run has something to change
    before = observe(live)
    run_id = ui.launch()
    ui.wait(run_id, ("STARTED", *ENDED))
    delay = rng.uniform(0.0, duration * 1.1)
    time.sleep(delay)  # from when the UI first shows it STARTED
    ui.ask(TERMINATE, {"id": run_id})
    stopped = ui.wait(run_id, ENDED)
    crashed = observe(live)
    next_id = ui.launch()
    following = ui.wait(next_id, ENDED)
    after = observe(live)
    rows = recorded(live, stopped)
    if crashed.digest == before.digest:
        published = "before"
    elif crashed.run_ids - before.run_ids and crashed.run_ids <= after.run_ids:
        published = "after"
    else:
        published = "NEITHER"
    said = [status if status == "succeeded" else ("interrupted" if error == INTERRUPTED else error[:80]) for status, error in rows]
    told = (said == ["succeeded"] if published == "after" else
            said in (["interrupted"], []))  # []: stopped before its sync began (no attempt to record)
    ok = following["status"] == "SUCCESS" and published != "NEITHER" and told
    return {"delay": delay, "status": stopped["status"], "published": published, "said": said,
            "next": following["status"], "ok": ok}, following["endTime"] - following["startTime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-takers", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="jofi-ui-terminate-") as tmp_name, \
            SimulatorProcess(test_takers=args.test_takers, seed=3, latency_ms=args.latency_ms, pagination="cursor") as sim:
        tmp = Path(tmp_name)
        env = {**os.environ, **sim.env(), "JOFI_DATA_DIR": str(tmp / "data"), "DAGSTER_DISABLE_TELEMETRY": "1"}
        proc, ui = start_dagster_dev(tmp, env)
        try:
            first = ui.wait(ui.launch(), ENDED)
            duration = first["endTime"] - first["startTime"]
            print(f"first run {first['status']} in {duration:.1f} s; terminations drawn from 0 to 1.1 x the last run's length")
            results = []
            for n in range(args.trials):
                result, duration = trial(ui, sim, tmp / "data" / "live", rng, duration)
                results.append(result)
                print(f"trial {n}: terminated {result['delay']:.2f} s after STARTED -> {result['status']}, published state "
                      f"{result['published']}, sync_runs says {result['said']}, next run {result['next']}"
                      f"{'' if result['ok'] else '  FAILED'}", flush=True)
        finally:
            stop(proc)
    passed = sum(r["ok"] for r in results)
    kinds = {k: sum(r["published"] == k for r in results) for k in ("before", "after")}
    unstarted = sum(r["said"] == [] for r in results)
    print(f"\n{passed} of {len(results)} trials passed; stopped before the publish {kinds['before']} (before the sync "
          f"began {unstarted}), after it {kinds['after']}")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
