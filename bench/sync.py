"""Benchmark: the whole sync against the simulator — full sync, nightly re-sync, memory, baseline.

Starts simulators with 50 ms latency (cursor paging, so a fresh warehouse can reach all 5,000 test
takers; JOFI's capped lists would show a fresh warehouse only the newest 30-50 records) and runs
each sync in its own subprocess, which reports its wall time, requests, time spent in fan-outs
and its peak RSS (getrusage RUSAGE_SELF). The request-rate bound of a run is
min(rate limit, concurrency / latency). Prints one table; exits non-zero when a target is missed.

    uv run --frozen python bench/sync.py [--test-takers 5000] [--small 1000] [--baseline-budget 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LATENCY_MS = 50.0
SCORECARD_ROUTE = "GET /test-takers/{id}/scorecard"


# ---- the child: one sync, measured -------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Run one sync (optionally cut off after a time budget) and print its measurements as JSON."""
    import cProfile
    import pstats

    from jofi_pipeline.sync import SyncOptions, run_sync
    from jofi_pipeline.sync.by_id import FanOut

    fanout_seconds = 0.0
    real_fetch = FanOut.fetch

    async def timed_fetch(self, *a, **kw):
        nonlocal fanout_seconds
        started = time.perf_counter()
        try:
            return await real_fetch(self, *a, **kw)
        finally:
            fanout_seconds += time.perf_counter() - started

    FanOut.fetch = timed_fetch
    options = SyncOptions(full_refresh=args.full)

    async def main() -> dict:
        from jofi_pipeline.api import ClientConfig, JofiClient
        from jofi_pipeline.warehouse import WarehouseStore

        config = ClientConfig(max_concurrency=args.concurrency)
        # Handed to the sync, so a cut-off run still knows the requests it sent.
        async with JofiClient.from_env("live", base_url=args.base_url, config=config) as client:
            try:
                report = await asyncio.wait_for(
                    run_sync(client, WarehouseStore(Path(args.data_dir), "live"), options), args.budget or None
                )
                return {"requests": report.requests_total, "requests_by_route": report.requests, "finished": True}
            except TimeoutError:
                return {"requests": client.requests_total, "requests_by_route": client.request_counts(), "finished": False}

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    result = asyncio.run(main())
    result["seconds"] = time.perf_counter() - started
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    result["fanout_seconds"] = fanout_seconds
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# ---- the parent: simulators, scenarios, table ---------------------------------------------------


@dataclass
class Measured:
    name: str
    seconds: float
    requests: int
    scorecards: int
    fanout_seconds: float
    max_rss_mb: float
    finished: bool
    concurrency: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def bound(self) -> float:
        return self.concurrency / (LATENCY_MS / 1000)


def run_child(sim, data_dir: Path, name: str, *, concurrency: int = 16, full: bool = False, budget: float = 0,
              profile: bool = False) -> Measured:
    command = [sys.executable, __file__, "--child", "--base-url", sim.base_url, "--data-dir", str(data_dir),
               "--concurrency", str(concurrency), "--budget", str(budget)]
    command += ["--full"] if full else []
    command += ["--profile"] if profile else []
    env = {**os.environ, "JOFI_LIVE_API_KEY": sim.live_key}
    print(f"  running: {name} ...", file=sys.stderr, flush=True)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if profile:
        print(out.stderr, file=sys.stderr)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Measured(name, r["seconds"], r["requests"], r["requests_by_route"].get("/test-takers/{test_taker_id}/scorecard", 0),
                    r["fanout_seconds"], r["max_rss_mb"], r["finished"], concurrency)


def changed_share(before: dict, after: dict) -> tuple[int, int]:
    """(test takers whose completions or profile changed or that are new, test takers after)."""

    def inputs(t: dict) -> tuple:
        done = sorted((a["id"], a.get("completed_at")) for a in t.get("assigned_assessments") or [])
        return tuple(done), t.get("career_navigation_profile_id")

    old = {t["id"]: inputs(t) for t in before["test_takers"]}
    new = {t["id"]: inputs(t) for t in after["test_takers"]}
    return sum(1 for i, v in new.items() if old.get(i) != v), len(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url")
    parser.add_argument("--data-dir")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--budget", type=float, default=0.0)
    parser.add_argument("--profile", action="store_true", help="cProfile each sync subprocess (stderr)")
    parser.add_argument("--test-takers", type=int, default=5000)
    parser.add_argument("--small", type=int, default=1000, help="test takers of the RSS comparison world")
    parser.add_argument("--baseline-budget", type=float, default=60.0, help="seconds the concurrency-1 run may take")
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from jofi_pipeline.simulator.process import SimulatorProcess

    rows: list[tuple[str, str, str, str]] = []  # (measure, value, target, result)
    passed: list[bool] = []

    def row(measure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((measure, value, target, "" if ok is None else ("PASS" if ok else "MISS")))
        if ok is not None:
            passed.append(ok)

    with tempfile.TemporaryDirectory(prefix="jofi-bench-") as tmp:
        tmp_path = Path(tmp)
        sim_options = {"latency_ms": LATENCY_MS, "pagination": "cursor", "seed": 42}
        with SimulatorProcess(test_takers=args.small, **sim_options) as sim:
            small = run_child(sim, tmp_path / "small", f"full sync, {args.small} test takers")
        with SimulatorProcess(test_takers=args.test_takers, **sim_options) as sim:
            full = run_child(sim, tmp_path / "big", f"full sync, {args.test_takers} test takers, concurrency 16",
                             profile=args.profile)
            before = sim.truth("live")
            sim.advance(1)
            after = sim.truth("live")
            changed, takers = changed_share(before, after)
            nightly = run_child(sim, tmp_path / "big", "nightly re-sync after advance(1)", profile=args.profile)
            baseline = run_child(sim, tmp_path / "baseline", "full sync, concurrency 1 (baseline)",
                                 concurrency=1, budget=args.baseline_budget)

    print(f"\nsync benchmark: simulator latency {LATENCY_MS:g} ms, cursor paging, 4 score profiles, no rate "
          f"limit -> bound = concurrency / latency; each sync in its own process; 2 CPU cores shared")
    ratio = full.rate / full.bound
    fan_rate = full.requests / full.fanout_seconds if full.fanout_seconds else 0.0
    row(f"full sync ({args.test_takers} test takers, concurrency 16): wall time", f"{full.seconds:.1f} s")
    row("  requests (scorecards)", f"{full.requests} ({full.scorecards})")
    row("  achieved requests/s over the whole run / bound", f"{full.rate:.0f} / {full.bound:.0f} = {ratio:.2f}",
        ">= 0.80", ratio >= 0.8)
    row("  requests/s during fan-outs only / bound", f"{fan_rate:.0f} / {full.bound:.0f} = {fan_rate / full.bound:.2f}")
    share = changed / takers
    row("advance(1): test takers whose completions/profile changed or are new", f"{changed} of {takers} = {share:.1%}",
        "premise <= 2%", None)
    nightly_share = nightly.requests / full.requests
    row("nightly re-sync: requests (scorecards)", f"{nightly.requests} ({nightly.scorecards}) = {nightly_share:.1%} of full",
        "<= 10%", nightly_share <= 0.10 if share <= 0.02 else None)
    row("nightly re-sync: wall time", f"{nightly.seconds:.1f} s")
    rss_ratio = full.max_rss_mb / small.max_rss_mb
    row(f"peak RSS, full sync at {args.small} test takers", f"{small.max_rss_mb:.0f} MB")
    row(f"peak RSS, full sync at {args.test_takers} test takers", f"{full.max_rss_mb:.0f} MB  ({rss_ratio:.2f}x)",
        "< 1.5x", rss_ratio < 1.5)
    if baseline.finished:
        row("baseline full sync at concurrency 1: wall time", f"{baseline.seconds:.1f} s, {baseline.requests} requests")
    else:
        estimate = baseline.seconds * full.requests / max(baseline.requests, 1)
        row("baseline full sync at concurrency 1 (cut off, extrapolated)",
            f"{baseline.requests} requests in {baseline.seconds:.0f} s = {baseline.rate:.1f}/s -> ~{estimate:.0f} s "
            f"for {full.requests}")
    row("  speed-up of concurrency 16 over the baseline", f"{full.rate / baseline.rate:.1f}x")

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{vwidth}}  {'target':<14} result")
    print("-" * (width + vwidth + 24))
    for measure, value, target, result in rows:
        print(f"{measure:<{width}}  {value:<{vwidth}}  {target:<14} {result}")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
