"""History bench: what keeping every version costs the nightly, and how big history grows.

Two simulators with the same seed play the same 30 days; each night one warehouse syncs with
history and the other with the history writes switched off (the same code, its history functions
replaced by no-ops for the run), alternating which goes first. Prints per night the wall and CPU
times of both and the time spent in history writes, where the time goes (the publish's steps and
lanes, the close, the merges, the history patched into the publish's copy beside the fetch:
bench/phase_times.py), then per history table its rows, versions per key and Parquet size after
the last night next to its table's.

The A/B is paired: the overhead is the median over nights of (with / without - 1), so a burst of
load from elsewhere on one night moves one pair, not the mean. CPU is this process's own
(`time.process_time`: the sync's threads and DuckDB's, not the simulators'), which load on the
machine disturbs less than wall time; wall time is what the target names.

    uv run --frozen python bench/history.py [--days 30] [--test-takers 300] [--daily-invitations 20]

Targets (issue 16): history adds <= 10% to the nightly's wall time; a nightly writes versions for
the changed records only (no versions on a night with no activity, see the `idle` row).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import duckdb  # noqa: E402

from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from targets import load_average  # noqa: E402  (bench/targets.py)
from phase_times import PhaseTimes  # noqa: E402  (bench/phase_times.py)
from jofi_pipeline.api import JofiClient  # noqa: E402
from jofi_pipeline.sync import run_sync  # noqa: E402
from jofi_pipeline.warehouse import WarehouseStore, history  # noqa: E402
from jofi_pipeline.warehouse.records import MergeCounts  # noqa: E402
from jofi_pipeline.warehouse.tables import HISTORY  # noqa: E402

LATENCY_MS = 50
PHASES = PhaseTimes().install()
TIMED = ("record_versions", "record_changed_versions", "tables_with_current_versions_of", "record_deletes", "record_children",
         "open_first_child_versions", "start_missing_from_current_rows")
spent = {"seconds": 0.0}


def _timed(function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started
    return wrapper


REAL = {name: getattr(history, name) for name in TIMED}
TIMED_FUNCTIONS = {name: _timed(REAL[name]) for name in TIMED}
OFF = {
    "record_versions": lambda *a, **k: MergeCounts(),
    "record_changed_versions": lambda *a, **k: MergeCounts(),
    "tables_with_current_versions_of": lambda *a, **k: frozenset(),
    "record_deletes": lambda *a, **k: 0,
    "record_children": lambda *a, **k: MergeCounts(),
    "open_first_child_versions": lambda *a, **k: 0,
    "start_missing_from_current_rows": lambda *a, **k: {},
}


@contextmanager
def history_writes(on: bool):
    for name in TIMED:
        setattr(history, name, TIMED_FUNCTIONS[name] if on else OFF[name])
    try:
        yield
    finally:
        for name in TIMED:
            setattr(history, name, REAL[name])


def nightly(sim, data_dir: Path, on: bool) -> tuple[float, float, int, float, dict[str, float]]:
    """One sync: (wall seconds, seconds in history writes, history versions written, CPU seconds,
    seconds per step of the publish and the merges)."""
    spent["seconds"] = 0.0
    PHASES.take()
    os.environ["JOFI_LIVE_API_KEY"] = sim.live_key

    async def one_sync():
        async with JofiClient.from_env("live", base_url=sim.base_url) as client:
            return await run_sync(client, WarehouseStore(data_dir, "live"))

    with history_writes(on):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = asyncio.run(one_sync())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    written = sum(n for t, n in report.inserted.items() if t.endswith("_history"))
    return wall, spent["seconds"], written, cpu, PHASES.take()


def sizes(data_dir: Path) -> list[tuple]:
    parquet = data_dir / "live" / "parquet"
    rows = []
    with duckdb.connect(str(data_dir / "live" / "jofi.duckdb"), read_only=True) as con:
        for table, hist in HISTORY.items():
            key = ", ".join(f'"{k}"' for k in hist.key[:-1])
            versions, keys, current = con.execute(
                f'SELECT count(*), count(DISTINCT ({key})), count(*) FILTER (WHERE _is_current) FROM "{hist.name}"'
            ).fetchone()
            size = sum(f.stat().st_size for f in (parquet / hist.name).glob("*.parquet"))
            base = sum(f.stat().st_size for f in (parquet / table).glob("*.parquet"))
            rows.append((hist.name, versions, keys, current, versions / keys if keys else 0.0, size, base))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--test-takers", type=int, default=300)
    parser.add_argument("--daily-invitations", type=float, default=20)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    sim_options = {"test_takers": args.test_takers, "seed": args.seed, "pagination": "cursor",
                   "latency_ms": LATENCY_MS, "daily_invitations": args.daily_invitations}
    nights: list[tuple] = []
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="jofi-history-") as tmp, \
            SimulatorProcess(**sim_options) as sim_on, SimulatorProcess(**sim_options) as sim_off:
        on_dir, off_dir = Path(tmp) / "on", Path(tmp) / "off"
        print("  first syncs ...", file=sys.stderr, flush=True)
        nightly(sim_on, on_dir, True)
        nightly(sim_off, off_dir, False)
        idle = nightly(sim_on, on_dir, True)  # nothing happened at JOFI: no version may be written
        for day in range(1, args.days + 1):
            sim_on.advance(1)
            sim_off.advance(1)
            if day % 2:
                on = nightly(sim_on, on_dir, True)
                off = nightly(sim_off, off_dir, False)
            else:
                off = nightly(sim_off, off_dir, False)
                on = nightly(sim_on, on_dir, True)
            nights.append((day, on, off))
            loads.append(load_average())
            print(f"  day {day}: with {on[0]:.2f}s wall {on[3]:.2f}s CPU (history {on[1]:.3f}s, {on[2]} versions), "
                  f"without {off[0]:.2f}s wall {off[3]:.2f}s CPU  ({loads[-1]})", file=sys.stderr, flush=True)
        table = sizes(on_dir)
        db_on = (on_dir / "live" / "jofi.duckdb").resolve().stat().st_size
        db_off = (off_dir / "live" / "jofi.duckdb").resolve().stat().st_size

    print(f"\nhistory bench: {args.days} simulated days, {args.test_takers} test takers, ~{args.daily_invitations:g} "
          f"invitations/day, simulator latency {LATENCY_MS} ms, cursor paging; nightly = `sync` after `advance?days=1`")
    print(f"{'night':<8}{'with (s)':>10}{'without (s)':>13}{'CPU with':>10}{'CPU w/o':>9}{'history (s)':>13}{'share':>8}{'versions':>10}")
    print(f"{'idle':<8}{idle[0]:>10.2f}{'':>13}{idle[3]:>10.2f}{'':>9}{idle[1]:>13.3f}{idle[1] / idle[0]:>8.1%}{idle[2]:>10}")
    for day, on, off in nights:
        print(f"{day:<8}{on[0]:>10.2f}{off[0]:>13.2f}{on[3]:>10.2f}{off[3]:>9.2f}{on[1]:>13.3f}{on[1] / on[0]:>8.1%}{on[2]:>10}")
    with_mean = statistics.mean(n[1][0] for n in nights)
    without_mean = statistics.mean(n[2][0] for n in nights)
    share = sum(n[1][1] for n in nights) / sum(n[1][0] for n in nights)
    overhead = statistics.median(n[1][0] / n[2][0] - 1 for n in nights)
    cpu_overhead = statistics.median(n[1][3] / n[2][3] - 1 for n in nights)
    print(f"{'mean':<8}{with_mean:>10.2f}{without_mean:>13.2f}{statistics.mean(n[1][3] for n in nights):>10.2f}"
          f"{statistics.mean(n[2][3] for n in nights):>9.2f}{statistics.mean(n[1][1] for n in nights):>13.3f}{share:>8.1%}"
          f"{statistics.mean(n[1][2] for n in nights):>10.0f}")
    print(f"\nnightly overhead (median of the nightly pairs): {overhead:+.1%} wall time (target <= 10%), "
          f"{cpu_overhead:+.1%} CPU; ratio of the means {with_mean / without_mean - 1:+.1%} wall")
    print(f"{share:.1%} of the nightly spent writing history; idle night wrote {idle[2]} versions (target 0)")
    print(f"\nwhere the time goes (mean seconds per nightly; the lanes run side by side)\n{'step':<28}{'with':>8}{'without':>9}{'extra':>8}")
    for label in nights[0][1][4]:
        with_s, without_s = (statistics.mean(n[i][4][label] for n in nights) for i in (1, 2))
        print(f"{label:<28}{with_s:>8.3f}{without_s:>9.3f}{with_s - without_s:>+8.3f}")
    print("load while measuring: " + "; ".join(dict.fromkeys(loads)))
    print(f"\nafter {args.days} days: DuckDB file {db_on / 1e6:.1f} MB with history, {db_off / 1e6:.1f} MB without")
    print(f"{'history table':<36}{'versions':>10}{'keys':>8}{'current':>9}{'per key':>9}{'parquet KB':>12}{'table KB':>10}")
    for name, versions, keys, current, per_key, size, base in table:
        print(f"{name:<36}{versions:>10}{keys:>8}{current:>9}{per_key:>9.2f}{size / 1024:>12.1f}{base / 1024:>10.1f}")
    ok = max(share, overhead) <= 0.10 and idle[2] == 0
    print("\nPASS" if ok else "\nFAIL: a target was missed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
