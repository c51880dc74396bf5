"""Benchmark: the issue-14 targets in one table (CPU per request, bound ratio, nightly share, RSS, publish).

Every sync runs in its own process against a simulator in another process (cursor paging, so a
fresh warehouse reaches every record). The parent reads each sync process's own CPU time
(user+sys) and peak RSS from os.wait4, so the simulator's work is never counted. Two ways to run a
sync are measured:
  cli   `jofi-pipeline sync --mode live` (Dagster in-process): what a user pays, start-up included;
  bare  a Python process that imports the sync and calls `run_sync` (no Dagster).
The bound of a run is min(rate limit, concurrency / latency) requests per second; the ratio is
(requests / bound) / wall time of `run_sync` (health check, lists, fan-outs, merges and publish).

    .venv/bin/python bench/targets.py                    # everything (~10 min on a quiet machine)
    .venv/bin/python bench/targets.py --only cpu,bound   # sections: cpu, bound, nightly, rss, publish

Sections and their runtime on a quiet 2-core machine (each starts its own simulators):
  cpu      2,000 test takers, no latency, one cli and one bare full sync            (~1 min)
  bound    1,000 test takers, 50 ms latency: full syncs at concurrency 16 and 64,
           and at 100 req/s (client and server limit)                               (~1.5 min)
  nightly  the concurrency-16 warehouse of `bound` after POST /_sim/advance?days=1    (~10 s)
  rss      full syncs at 1,000 and 10,000 test takers, no latency, bare             (~3 min)
  publish  the 10,000 warehouse of `rss`, synced again with nothing changed: publish time
Prints one table with PASS/FAIL per target and the load average next to the figures; exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "jofi-pipeline"
LATENCY_MS = 50.0
SECTIONS = ("cpu", "bound", "nightly", "rss", "publish")


# ---- the child: one bare sync ----------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """`run_sync` once; print requests, wall time of run_sync and of its publish as JSON."""
    import asyncio

    from jofi_pipeline.sync import run_sync
    from jofi_pipeline.warehouse.store import RunWriter

    publish_seconds = []
    real_publish = RunWriter.publish

    def timed_publish(self):
        started = time.perf_counter()
        try:
            return real_publish(self)
        finally:
            publish_seconds.append(time.perf_counter() - started)

    RunWriter.publish = timed_publish
    from jofi_pipeline.api import ClientConfig, JofiClient
    from jofi_pipeline.warehouse import WarehouseStore

    config = ClientConfig(max_concurrency=args.concurrency, requests_per_second=args.rate)

    async def sync():
        async with JofiClient.from_env("live", base_url=args.base_url, config=config) as client:
            return await run_sync(client, WarehouseStore(Path(args.data_dir), "live"))

    started = time.perf_counter()
    report = asyncio.run(sync())
    seconds = time.perf_counter() - started
    print(json.dumps({"requests": report.requests_total, "seconds": seconds,
                      "publish_seconds": sum(publish_seconds), "status": report.status}))


# ---- the parent ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One sync process, measured from outside."""

    how: str
    requests: int
    seconds: float          # wall time of run_sync (bare) or of the whole process (cli)
    process_seconds: float  # wall time of the whole process
    cpu_seconds: float      # user + sys of the sync process only
    max_rss_mb: float
    publish_seconds: float | None
    load: str
    error: str = ""  # the last line of stderr when the sync failed

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests


def load_average() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def compile_checkout(checkout: Path) -> None:
    """Write the bytecode of a checkout's own modules before it is measured.

    With PYTHONDONTWRITEBYTECODE set (as on some machines) a checkout made for a paired run (e.g.
    `--baseline`) never gets a `__pycache__`, so each of its processes compiles the project's
    modules again: ~0.5 s of CPU per CLI sync that the checkout whose tests ran (and left
    `__pycache__` behind) does not pay. Dependencies are compiled by `make install` already.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-m", "compileall", "-q", str(checkout / "jofi_pipeline")],
                   env=env, check=True, stdout=subprocess.DEVNULL)


def run_process(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[str, str, float, float, float, int]:
    """Run a command; return stdout, stderr, wall seconds, its own CPU seconds, peak RSS (MB), exit code."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        print(f"{' '.join(command[:4])} ... failed ({proc.returncode}):\n{stderr[-2000:]}", file=sys.stderr)
    return stdout, stderr, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def sync(sim, data_dir: Path, how: str, *, concurrency: int = 16, rate: float = 0.0) -> Run:
    env = {**os.environ, "JOFI_API_BASE_URL": sim.base_url, "JOFI_LIVE_API_KEY": sim.live_key,
           "DAGSTER_DISABLE_TELEMETRY": "1"}
    env.pop("DAGSTER_HOME", None)
    print(f"  {how} sync, concurrency {concurrency}{f', rate {rate:g}/s' if rate else ''} ...", file=sys.stderr, flush=True)
    load = load_average()
    if how == "cli":
        command = [str(CLI), "sync", "--mode", "live", "--data-dir", str(data_dir), "--concurrency", str(concurrency)]
        command += ["--rate", str(rate)] if rate else []
        _, stderr, wall, cpu, rss, code = run_process(command, env)
        if code != 0:
            return failed(how, wall, cpu, rss, load, stderr)
        requests = last_run_requests(data_dir)
        return Run(how, requests, wall, wall, cpu, rss, None, load)
    command = [sys.executable, __file__, "--child", "--base-url", sim.base_url, "--data-dir", str(data_dir),
               "--concurrency", str(concurrency), "--rate", str(rate)]
    stdout, stderr, wall, cpu, rss, code = run_process(command, env)
    if code != 0:
        return failed(how, wall, cpu, rss, load, stderr)
    r = json.loads(stdout.strip().splitlines()[-1])
    return Run(how, r["requests"], r["seconds"], wall, cpu, rss, r["publish_seconds"], load)


def failed(how: str, wall: float, cpu: float, rss: float, load: str, stderr: str) -> Run:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return Run(how, 0, wall, wall, cpu, rss, None, load, error=(lines[-1] if lines else "failed")[-160:])


def last_run_requests(data_dir: Path) -> int:
    import duckdb

    with duckdb.connect(str(data_dir / "live" / "jofi.duckdb"), read_only=True) as con:
        return con.execute("SELECT requests_total FROM sync_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]


def simulator(test_takers: int, **faults):
    from jofi_pipeline.simulator.process import SimulatorProcess

    print(f"starting a simulator with {test_takers} test takers {faults or ''}", file=sys.stderr, flush=True)
    return SimulatorProcess(test_takers=test_takers, pagination="cursor", seed=42, **faults)


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, measure: str, value: str, target: str = "", ok: bool | None = None, load: str = "") -> None:
        self.rows.append((measure, value, target, "" if ok is None else ("PASS" if ok else "FAIL"), load))

    @property
    def passed(self) -> bool:
        return all(r[3] != "FAIL" for r in self.rows)

    def print(self) -> None:
        header = ("measure", "value", "target", "result", "load (1/5/15 min)")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(5)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        print(line.format(*header))
        print("-" * (sum(widths) + 8))
        for r in self.rows:
            print(line.format(*r))


def usable(table: Table, measure: str, *runs: Run) -> bool:
    """False (and a FAIL row saying why) when a sync the measure needs failed."""
    for run in runs:
        if run.error:
            table.add(f"{measure}: the sync failed (peak RSS {run.max_rss_mb:.0f} MB, {run.cpu_seconds:.0f} s CPU)", run.error, "", False, run.load)
            return False
    return True


def bound_row(table: Table, name: str, run: Run, bound: float, target: float) -> None:
    if not usable(table, name, run):
        return
    ideal = run.requests / bound
    ratio = ideal / run.seconds
    table.add(f"{name}: {run.requests} requests in {run.seconds:.1f} s (bound {bound:.0f}/s = {ideal:.1f} s)",
              f"{ratio:.2f} of bound", f">= {target:.2f}", ratio >= target, run.load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url")
    parser.add_argument("--data-dir")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--cpu-test-takers", type=int, default=2000)
    parser.add_argument("--bound-test-takers", type=int, default=1000)
    parser.add_argument("--rss-small", type=int, default=1000)
    parser.add_argument("--rss-large", type=int, default=10000)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    if not CLI.exists():
        raise SystemExit(f"{CLI} is missing: run `make install` first")

    table = Table()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jofi-targets-") as tmp:
        tmp_path = Path(tmp)
        if "cpu" in only:
            with simulator(args.cpu_test_takers) as sim:
                cli = sync(sim, tmp_path / "cpu-cli", "cli")
                bare = sync(sim, tmp_path / "cpu-bare", "bare")
            for run in (cli, bare):
                if not usable(table, f"CPU per request ({run.how})", run):
                    continue
                what = "jofi-pipeline sync (Dagster, CLI)" if run.how == "cli" else "bare run_sync process"
                table.add(f"CPU per request, {what}: {run.cpu_seconds:.1f} s CPU / {run.requests} requests, "
                          f"{args.cpu_test_takers} test takers, no latency, wall {run.process_seconds:.1f} s",
                          f"{run.cpu_ms_per_request:.2f} ms", "<= 1.20 ms" if run.how == "cli" else "",
                          run.cpu_ms_per_request <= 1.2 if run.how == "cli" else None, run.load)
        if "bound" in only or "nightly" in only:
            with simulator(args.bound_test_takers, latency_ms=LATENCY_MS) as sim:
                c16 = sync(sim, tmp_path / "c16", "bare", concurrency=16)
                if "bound" in only:
                    c64 = sync(sim, tmp_path / "c64", "bare", concurrency=64)
                if "nightly" in only:
                    sim.advance(1)
                    nightly = sync(sim, tmp_path / "c16", "bare", concurrency=16)
            if "bound" in only:
                bound_row(table, f"full sync, {args.bound_test_takers} test takers, 50 ms, concurrency 16", c16, 16 / 0.05, 0.9)
                bound_row(table, f"full sync, {args.bound_test_takers} test takers, 50 ms, concurrency 64", c64, 64 / 0.05, 0.9)
                with simulator(args.bound_test_takers, latency_ms=LATENCY_MS, rate_limit=100) as sim:
                    r100 = sync(sim, tmp_path / "r100", "bare", concurrency=16, rate=100)
                bound_row(table, f"full sync, {args.bound_test_takers} test takers, 50 ms, 100 req/s limit", r100, 100, 0.95)
            if "nightly" in only and usable(table, "nightly share", c16, nightly):
                share = nightly.requests / c16.requests
                table.add(f"nightly after advance(days=1): {nightly.requests} of {c16.requests} requests, "
                          f"{nightly.seconds:.1f} s", f"{share:.1%} of full", "<= 5%", share <= 0.05, nightly.load)
        if "rss" in only or "publish" in only:
            with simulator(args.rss_small) as sim:
                small = sync(sim, tmp_path / "rss-small", "bare")
            with simulator(args.rss_large) as sim:
                large = sync(sim, tmp_path / "rss-large", "bare")
                if "publish" in only:
                    again = sync(sim, tmp_path / "rss-large", "bare")
            if "rss" in only and usable(table, "peak RSS", small, large):
                ratio = large.max_rss_mb / small.max_rss_mb
                table.add(f"peak RSS of a bare full sync, no latency: {args.rss_small} test takers", f"{small.max_rss_mb:.0f} MB",
                          load=small.load)
                table.add(f"peak RSS of a bare full sync, no latency: {args.rss_large} test takers "
                          f"({large.requests} requests, {large.seconds:.0f} s)",
                          f"{large.max_rss_mb:.0f} MB = {ratio:.2f}x", "<= 1.20x", ratio <= 1.2, large.load)
            if "publish" in only and usable(table, "publish", large, again):
                table.add(f"full sync publish, {args.rss_large} test takers", f"{large.publish_seconds:.2f} s", load=large.load)
                table.add(f"nightly with nothing changed, {args.rss_large} test takers: publish "
                          f"({again.requests} requests, sync {again.seconds:.1f} s)",
                          f"{again.publish_seconds:.2f} s", "<= 1.00 s", again.publish_seconds <= 1.0, again.load)

    print(f"\nissue-14 targets (2 CPU cores shared with the simulator; figures are provisional unless the "
          f"machine was quiet); ran {time.perf_counter() - started:.0f} s")
    table.print()
    return 0 if table.passed else 1


if __name__ == "__main__":
    sys.exit(main())
