"""The window watcher against a running simulator: real HTTP, the real inbox, real syncs afterwards.

The simulator's clock moves in hours (`POST /_sim/advance?hours=N`); the in-process polls run on
that clock (`poll_once(now=...)`), the CLI polls on the wall clock, as cron would run them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg

from jofi_pipeline.analyst import status_text
from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.defs.checks import run_checks
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.watcher import jofi_window_watcher
from jofi_pipeline.runs import load_definitions
from jofi_pipeline.webhooks import watch_log
from jofi_pipeline.entities import CAPPED_LISTS as LISTS
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline.webhooks.watch import SAFE_SHARE, poll_once
from jofi_pipeline_tests.e2e.helpers import ids, published, sync, truth_ids

HOUR = 3600.0
CLI = [sys.executable, "-m", "jofi_pipeline.cli"]


class SimClock:
    """The simulator's own clock, for polls that run on simulated time."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.now = datetime.fromisoformat(sim.info()["now"])

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: int) -> dict:
        summary = self.sim.advance(hours=hours)
        self.now = datetime.fromisoformat(summary["now"])
        return summary


def client_for(sim, **config) -> JofiClient:
    return JofiClient(sim.live_key, mode="live", base_url=sim.base_url, config=ClientConfig(max_pages=1, **config))


def poll(sim, data_dir: Path, clock: SimClock, **kwargs):
    async def run():
        async with client_for(sim, **kwargs.pop("config", {})) as client:
            return await poll_once(client, data_dir, now=clock, **kwargs)

    return asyncio.run(run())


def inbox_ids(data_dir: Path, mode: str = "live") -> dict[str, set[str]]:
    with Inbox.open(ModePaths(data_dir, mode).inbox, create=False) as inbox:
        rows = inbox.read("SELECT entity, object_id FROM pending_ids")
    out: dict[str, set[str]] = {entity: set() for entity in LISTS}
    for entity, object_id in rows:
        out[entity].add(object_id)
    return out


def cli_env(sim, data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **sim.env(), "JOFI_DATA_DIR": str(data_dir), **extra}


def use_simulator(monkeypatch, sim) -> None:
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)


def test_polls_every_two_hours_then_one_sync_hold_every_record(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=20, seed=21, daily_invitations=70)
    use_simulator(monkeypatch, sim)
    sync(sim, "live", tmp_path)  # last night's sync: the whole small account is still inside the windows
    clock = SimClock(sim)
    created: dict[str, set] = {entity: set() for entity in LISTS}
    reports = [poll(sim, tmp_path, clock, interval_s=2 * HOUR)]
    for _ in range(23):  # two days: acceptances need invitations that were pending at midnight
        summary = clock.advance(2)
        created["invitations"] |= set(summary["invitations_created"])
        created["test_takers"] |= set(summary["test_takers_created"])
        created["career_navigation_profiles"] |= set(summary["career_navigation_profiles_created"])
        reports.append(poll(sim, tmp_path, clock, interval_s=2 * HOUR))
    summary = clock.advance(2)
    created["invitations"] |= set(summary["invitations_created"])
    assert len(created["invitations"]) > 100 and len(created["test_takers"]) > 30, "the days must overflow the windows"

    # The contract: one poll from cron's point of view, a separate process on the wall clock.
    sim.reset_stats()
    done = subprocess.run([*CLI, "watch", "--mode", "live", "--once"], env=cli_env(sim, tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("watch live: 3 requests") and sim.live_key not in done.stdout + done.stderr
    lists = {name: entry["by_mode"].get("live", 0) for name, entry in sim.stats()["routes"].items()}
    assert lists == {"GET /invitations": 1, "GET /test-takers": 1, "GET /career-navigation-profiles": 1}

    assert all(r.requests == 3 and r.outcome == "ok" and not r.gaps for r in reports)
    queued = inbox_ids(tmp_path)
    truth = sim.truth("live")
    window = {e: {str(i["id"]) for i in truth[e][: {"test_takers": 30}.get(e, 50)]} for e in LISTS}
    out_of_window = {e: queued[e] - window[e] for e in LISTS}
    assert len(out_of_window["invitations"]) > 0 and len(out_of_window["test_takers"]) > 0

    sim.reset_stats()
    sync(sim, "live", tmp_path)  # tonight's sync fetches the queued ids that left the windows by id
    by_id = {name: entry["by_mode"].get("live", 0) for name, entry in sim.stats()["routes"].items()}
    assert by_id["GET /invitations/{id}"] >= len(out_of_window["invitations"])
    assert by_id["GET /test-takers/{id}"] >= len(out_of_window["test_takers"])
    with published(tmp_path, "live") as con:
        for entity in LISTS:
            assert ids(con, entity) == truth_ids(truth, entity), f"{entity}: not every record is held"
    with Inbox.open(ModePaths(tmp_path, "live").inbox, create=False) as inbox:
        assert inbox.unapplied() == []


def test_a_window_that_turned_over_reports_the_exact_missed_count_and_shortens_the_interval(
    make_simulator, monkeypatch, tmp_path
):
    sim = make_simulator(test_takers=20, seed=22, daily_invitations=70)
    use_simulator(monkeypatch, sim)
    clock = SimClock(sim)
    poll(sim, tmp_path, clock, interval_s=24 * HOUR)
    seen_before = inbox_ids(tmp_path)
    summary = clock.advance(24)
    report = poll(sim, tmp_path, clock, interval_s=24 * HOUR)

    created = {
        "invitations": {str(i) for i in summary["invitations_created"]},
        "test_takers": {str(i) for i in summary["test_takers_created"]},
        "career_navigation_profiles": set(summary["career_navigation_profiles_created"]),
    }
    seen = inbox_ids(tmp_path)
    missed = {g.entity: g.missed for g in report.gaps}
    assert missed.get("invitations", 0) > 0, "70 a day against a window of 50 must lose some in 24 h"
    for entity in LISTS:
        never_listed = created[entity] - seen[entity]
        assert missed.get(entity, 0) == len(never_listed), entity
        assert seen_before[entity] <= seen[entity]
    gap = next(g for g in report.gaps if g.entity == "invitations")
    assert gap.interval_before_s == 24 * HOUR and gap.interval_after_s == report.interval_s
    assert report.interval_s <= 24 * HOUR * SAFE_SHARE * gap.listed / (gap.listed + gap.missed)
    assert any("the window turned over" in line and f"{gap.missed} records missed" in line for line in report.lines())

    text = status_text(data_dir=tmp_path)
    assert f"invitations={missed['invitations']}" in text and "interval shortened to" in text

    sync(sim, "live", tmp_path)
    with PublishedWarehouse("live", tmp_path).open() as reader:
        checks = {r.asset_key.path[-1]: r for r in run_checks(reader, "live", watch_log.summary(ModePaths(tmp_path, "live").inbox))
                  if r.check_name == "coverage"}
    coverage = checks["invitations"]
    assert not coverage.passed
    assert coverage.metadata["missing (live)"].value == missed["invitations"], "the sync's coverage agrees with the watcher"
    assert coverage.metadata["watcher_missed (live)"].value == missed["invitations"]
    assert "window watcher saw" in coverage.metadata["what_to_do"].value


def test_a_failing_poll_loses_nothing_and_the_watcher_runs_beside_a_writer(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=20, seed=23, daily_invitations=70)
    use_simulator(monkeypatch, sim)
    clock = SimClock(sim)
    first = poll(sim, tmp_path, clock)
    assert first.outcome == "ok" and sum(first.queued.values()) > 0
    before = inbox_ids(tmp_path)

    clock.advance(2)
    sim.set_faults(error_rate=1.0, routes=["/test-takers"])
    partial = poll(sim, tmp_path, clock, config={"max_retries": 0})
    assert partial.outcome == "partial" and set(partial.errors) == {"test_takers"}
    after_partial = inbox_ids(tmp_path)
    assert all(before[e] <= after_partial[e] for e in LISTS) and after_partial["invitations"] > before["invitations"]
    assert after_partial["test_takers"] == before["test_takers"]

    sim.set_faults(error_rate=1.0, routes=[])
    failed = poll(sim, tmp_path, clock, config={"max_retries": 0})
    assert failed.outcome == "failed" and inbox_ids(tmp_path) == after_partial
    assert "last error" in status_text(data_dir=tmp_path)

    sim.clear_faults()
    clock.advance(2)
    recovered = poll(sim, tmp_path, clock)
    assert recovered.outcome == "ok" and not recovered.gaps
    truth_window = {str(t["id"]) for t in sim.truth("live")["test_takers"][:30]}
    assert truth_window <= inbox_ids(tmp_path)["test_takers"], "what the failed polls did not read is caught up"

    # A sync holds its DuckDB work file read-write for the whole run; the watcher never needs it.
    work = tmp_path / "live" / "work" / "jofi_work.duckdb"
    work.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; con = duckdb.connect({str(work)!r}); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run([*CLI, "watch", "--mode", "live", "--once"], env=cli_env(sim, tmp_path),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    wrong = subprocess.run([*CLI, "watch", "--mode", "live", "--once"],
                           env=cli_env(sim, tmp_path, JOFI_LIVE_API_KEY="sk_live_revokedrevoked"),
                           capture_output=True, text=True, timeout=120)
    errors = [line for line in wrong.stderr.splitlines() if line.startswith("error:")]
    assert wrong.returncode == 1 and len(errors) == 1 and "JOFI_LIVE_API_KEY" in errors[0]
    assert "sk_live_revokedrevoked" not in wrong.stdout + wrong.stderr
    final = inbox_ids(tmp_path)
    assert all(after_partial[e] <= final[e] for e in LISTS)


def test_the_sensor_polls_each_mode_when_due_and_is_off_by_default(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=20, seed=24)
    use_simulator(monkeypatch, sim)
    sensor = load_definitions().resolve_sensor_def("jofi_window_watcher")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    resource = JofiSyncResource(data_dir=str(tmp_path), base_url=sim.base_url)

    said = jofi_window_watcher(dg.build_sensor_context(resources={"jofi": resource}))
    assert isinstance(said, dg.SkipReason)
    assert "watch live: 3 requests" in said.skip_message and "watch test: 3 requests" in said.skip_message
    for mode in ("live", "test"):
        truth = sim.truth(mode)
        queued = inbox_ids(tmp_path, mode)
        for entity in LISTS:
            listed = {str(r["id"]) for r in truth[entity][: {"test_takers": 30}.get(entity, 50)]}
            assert queued[entity] == listed, (mode, entity)

    again = jofi_window_watcher(dg.build_sensor_context(resources={"jofi": resource}))
    assert "live: next poll in" in again.skip_message and "test: next poll in" in again.skip_message
