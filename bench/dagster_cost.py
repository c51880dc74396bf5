"""Benchmark: what Dagster adds to a sync — bare `run_sync` vs `jofi-pipeline sync` vs `dagster job execute`.

One simulator world (200 test takers, seed 42: ~1,100 requests for a full sync). Each sync is a
full sync into a fresh data folder, in its own process, measured from outside (wall time, and the
process's own CPU from os.wait4, which load on the machine disturbs less than wall time):
  bare     python -c: import the sync, `run_sync` once (no Dagster at all, not even its import)
  cli      ./jofi-pipeline sync --mode live          (a run of jofi_sync in the shared instance)
  dagster  dagster job execute -m jofi_pipeline.definitions -j jofi_sync (partition live)
They run as a person runs them: from a project folder holding a copy of the project's
dagster.yaml, DAGSTER_HOME unset, so the instance is the one that file configures (one instance
for all rounds, its history growing as a real one does). `--baseline DIR` adds `cli` of another
checkout (its own .venv) to every round: a paired before/after under the same load.
The commands alternate, `--rounds` times; the table shows medians and the cost over bare.
Target (issue 13): cli - bare <= 2 s.

    .venv/bin/python bench/dagster_cost.py [--rounds 3] [--test-takers 200] [--baseline /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import ROOT, compile_checkout, load_average, run_process  # noqa: E402  (one way to measure a process)

BIN = ROOT / ".venv" / "bin"
TARGET_SECONDS = 2.0



def bare_command(data_dir: Path) -> list[str]:
    """A process that runs the sync exactly as the asset does, minus Dagster."""
    code = (  # the resource's defaults (no upload), without importing Dagster (defs/resources.py imports it)
        "import asyncio\n"
        "from pathlib import Path\n"
        "from jofi_pipeline.api import JofiClient\n"
        "from jofi_pipeline.sync import run_sync\n"
        "from jofi_pipeline.warehouse import WarehouseStore\n"
        "async def bare():\n"
        "    async with JofiClient.from_env('live') as client:\n"
        f"        await run_sync(client, WarehouseStore(Path({str(data_dir)!r}), 'live'))\n"
        "asyncio.run(bare())\n"
    )
    return [str(BIN / "python"), "-c", code]


def commands(data_dir: Path, baseline: Path | None = None) -> dict[str, list[str]]:
    out = {
        "bare": bare_command(data_dir),
        "cli": [str(BIN / "jofi-pipeline"), "sync", "--mode", "live", "--data-dir", str(data_dir)],
        "dagster": [str(BIN / "dagster"), "job", "execute", "-m", "jofi_pipeline.definitions", "-j", "jofi_sync",
                    "--tags", json.dumps({"dagster/partition": "live"})],
    }
    if baseline is not None:
        out["cli@baseline"] = [str(baseline / ".venv" / "bin" / "jofi-pipeline"), "sync", "--mode", "live", "--data-dir", str(data_dir)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--test-takers", type=int, default=200)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout whose `cli` runs in every round too")
    args = parser.parse_args()

    from jofi_pipeline.simulator.process import SimulatorProcess

    hows = ["bare", "cli", "dagster"] + (["cli@baseline"] if args.baseline else [])
    for checkout in (ROOT, *([args.baseline] if args.baseline else [])):
        compile_checkout(checkout)  # both sides start from bytecode (targets.compile_checkout)
    measured: dict[str, list[tuple[float, float]]] = {how: [] for how in hows}
    loads = []
    with SimulatorProcess(test_takers=args.test_takers, seed=42) as sim, tempfile.TemporaryDirectory() as tmp:
        projects = {how: Path(tmp) / f"project-{how}" for how in hows}  # one instance per command, as a person has one
        for project in projects.values():
            project.mkdir()
        for how, project in projects.items():
            checkout = args.baseline if how == "cli@baseline" else ROOT
            shutil.copy(checkout / "dagster.yaml", project / "dagster.yaml")
        for round_no in range(args.rounds):
            for how in hows:
                data_dir = Path(tmp) / f"{how}-{round_no}"
                env = {**os.environ, "JOFI_API_BASE_URL": sim.base_url, "JOFI_LIVE_API_KEY": sim.live_key,
                       "JOFI_DATA_DIR": str(data_dir), "DAGSTER_DISABLE_TELEMETRY": "1"}
                env.pop("DAGSTER_HOME", None)
                loads.append(load_average())
                print(f"  round {round_no + 1}: {how} ...", file=sys.stderr, flush=True)
                _, stderr, wall, cpu, _, code = run_process(commands(data_dir, args.baseline)[how], env, cwd=projects[how])
                if code != 0:
                    print(f"{how} failed:\n{stderr[-2000:]}", file=sys.stderr)
                    return 1
                measured[how].append((wall, cpu))

    bare_wall = statistics.median(w for w, _ in measured["bare"])
    bare_cpu = statistics.median(c for _, c in measured["bare"])
    print(f"\nfull live sync, {args.test_takers} test takers, median of {args.rounds} rounds")
    print(f"{'how':<10}{'wall s':>9}{'over bare':>11}{'CPU s':>9}{'over bare':>11}")
    for how, runs in measured.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        print(f"{how:<10}{wall:>9.2f}{wall - bare_wall:>+11.2f}{cpu:>9.2f}{cpu - bare_cpu:>+11.2f}")
    cli_over = statistics.median(w for w, _ in measured["cli"]) - bare_wall
    cli_cpu_over = statistics.median(c for _, c in measured["cli"]) - bare_cpu
    verdict = "PASS" if cli_over <= TARGET_SECONDS else "FAIL"
    print(f"\ncli over bare: {cli_over:+.2f} s wall, {cli_cpu_over:+.2f} s CPU (target <= {TARGET_SECONDS:.0f} s): {verdict}")
    print("load while measuring: " + "; ".join(dict.fromkeys(loads)))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
