"""Chaos bench: seeded kill -9 trials of `jofi-pipeline sync` plus server-fault runs, longer than
the test suite. Prints one table: cases tried, passed, records lost.

    uv run --frozen python bench/chaos.py [--trials 200] [--fault-runs 3] [--seed 7]

A crash trial passes when the published warehouse is exactly the state before or after a run,
the DuckDB file and Parquet tree agree, no key repeats, the history tables hold clean version
chains that agree with the current tables (no version lost or duplicated, none the crashed state
published missing after the next run), and the next run completes with every record of the
simulator's truth. A fault run passes when it ends in exactly the truth, or fails
with one clear line and leaves the published warehouse unchanged.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from jofi_pipeline.harness.crash import SYNC, crash_trials, records_lost  # noqa: E402
from jofi_pipeline.harness.published_state import observe  # noqa: E402
from jofi_pipeline.harness.zygote import Zygote  # noqa: E402

FAULTS = {
    "5xx bursts": {"error_rate": 0.3},
    "429 storm (fan-out)": {"rate_limit_per_s": 30, "rate_limit_burst": 5},
    "connection resets": {"reset_rate": 0.1},
    "malformed JSON": {"malformed_rate": 0.15},
    "HTML 200 answers": {"wrong_content_type_rate": 0.15},
    "truncated bodies": {"truncated_rate": 0.15},
    "mode switch mid-run": {"force_mode": "other", "routes": ["/scorecard"]},
    "key revoked mid-run": {"revoke_after_requests": 60},
    "schema drift": {"drift_remove": ["first_name"], "drift_add": ["x_new"], "drift_retype": ["email"]},
}


def fault_run(zygote: Zygote, sim, env: dict[str, str], faults: dict) -> tuple[bool, int, str]:
    mode_dir = Path(env["JOFI_DATA_DIR"]) / "live"
    sim.advance(1)
    before = observe(mode_dir)
    sim.set_faults(**faults)
    code, _, err = zygote.run(SYNC, env)
    sim.clear_faults()
    try:
        now = observe(mode_dir)
        if code == 0:
            lost = records_lost(sim, mode_dir)
            return lost == 0, lost, "succeeded"
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        clear = len(errors) == 1 and "Traceback" not in err
        ok = clear and now == before and zygote.run(SYNC, env)[0] == 0
        return ok, records_lost(sim, mode_dir), "failed clearly" if ok else f"bad failure: {err[-300:]}"
    except AssertionError as exc:
        return False, 0, str(exc).splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--fault-runs", type=int, default=3, help="runs per server-fault case")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-takers", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows: list[tuple[str, int, int, int, str]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jofi-chaos-") as tmp, SimulatorProcess(
        test_takers=args.test_takers, seed=args.seed, pagination="cursor"
    ) as sim:
        zygote = Zygote(Path(tmp))
        try:
            env = {**sim.env(), "JOFI_DATA_DIR": str(Path(tmp) / "data")}
            trials, duration = crash_trials(zygote, sim, env, rng, args.trials)
            killed = [t for t in trials if t.killed]
            for label, group in (("kill -9 (landed mid-run)", killed), ("kill -9 (run had finished)", [t for t in trials if not t.killed])):
                notes = (f"before={sum(t.outcome == 'before' for t in group)} after={sum(t.outcome == 'after' for t in group)} "
                         f"history versions lost={sum(t.versions_lost for t in group)}")
                problems = {t.problem for t in group if not t.ok}
                rows.append((label, len(group), sum(t.ok for t in group), sum(t.records_lost for t in group), notes + ("; " + "; ".join(problems) if problems else "")))
            for name, faults in FAULTS.items():
                outcomes = [fault_run(zygote, sim, env, {**faults, "seed": rng.randrange(10**6)}) for _ in range(args.fault_runs)]
                notes = ", ".join(sorted({o[2][:60] for o in outcomes}))
                rows.append((name, len(outcomes), sum(o[0] for o in outcomes), sum(o[1] for o in outcomes), notes))
        finally:
            zygote.close()
    print(f"\nchaos bench: seed={args.seed} test_takers={args.test_takers} run~{duration:.1f}s wall={time.monotonic() - started:.0f}s")
    print(f"{'case':<28}{'tried':>7}{'passed':>8}{'lost':>6}  notes")
    for name, tried, passed, lost, notes in rows:
        print(f"{name:<28}{tried:>7}{passed:>8}{lost:>6}  {notes}")
    total = sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"{'TOTAL':<28}{total[0]:>7}{total[1]:>8}{total[2]:>6}")
    sys.exit(0 if total[0] == total[1] and total[2] == 0 else 1)


if __name__ == "__main__":
    main()
