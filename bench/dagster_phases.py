"""Benchmark: where Dagster's fixed cost of a CLI sync goes — CPU seconds per phase, in one process.

A child process does what `jofi-pipeline sync --mode live` does, step by step, and reads its own
CPU time (user+sys) around each step: importing the CLI's run module (Dagster with it), loading the
definitions, opening the project instance (a project folder holding the checkout's dagster.yaml,
DAGSTER_HOME unset), creating the run of `jofi_sync` with its origin, executing it (the sync
itself included: compare with bench/dagster_cost.py's bare figure), how many events it stored, and
the interpreter's exit (the process's CPU from wait4 minus what it had used before exiting). A
checkout that has `jofi_pipeline.collector`, `runs.sync_job` and `entry.leave` is run (and ends) as
its console script runs.
CPU is the measure because the machine is shared: wall time follows the load.

    .venv/bin/python bench/dagster_phases.py [--rounds 2] [--test-takers 20] [--baseline /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import ROOT, compile_checkout, load_average, run_process  # noqa: E402

PHASES = ("import", "definitions", "open instance", "create run", "execute run", "exit")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(data_dir: str) -> None:
    """One sync, phase by phase; prints one JSON line of CPU seconds."""
    out: dict[str, float] = {}
    started = cpu()
    try:  # what the console script does first (checkouts that have it): no collections during start-up
        from jofi_pipeline import collector

        collector.entry()
    except ImportError:
        collector = None
    import dagster as dg

    import jofi_pipeline.runs as runs
    out["import"] = cpu() - started
    started = cpu()
    if hasattr(runs, "sync_job"):
        job = runs.sync_job()
    else:
        job = runs.load_definitions().resolve_job_def(runs.JOB_NAME)
    out["definitions"] = cpu() - started
    started = cpu()
    instance = runs.open_instance()
    if collector is not None:
        collector.loaded()
    out["open instance"] = cpu() - started
    started = cpu()
    remote, code = runs.job_origins(job.name)
    run = instance.create_run_for_job(
        job_def=job,
        run_config={"resources": {"jofi": {"config": {"data_dir": data_dir}}},
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        tags={**job.run_tags, **job.get_tags_for_partition_key("live", selected_asset_keys=None)},
        remote_job_origin=remote, job_code_origin=code, status=dg.DagsterRunStatus.NOT_STARTED,
    )
    out["create run"] = cpu() - started
    started = cpu()
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    if not execute_run(InMemoryJob(job), run, instance).success:
        raise SystemExit("the run failed")
    out["execute run"] = cpu() - started
    out["events"] = len(instance.all_logs(run.run_id))
    instance.dispose()
    print(json.dumps(out), flush=True)
    if collector is not None:
        collector.exiting()
    # The interpreter's exit (its last collections included): the parent subtracts this from the
    # process's whole CPU time (wait4).
    print(json.dumps({"before exit": cpu()}), flush=True)
    try:  # the console script's end (checkouts that have it): without the interpreter's teardown
        from jofi_pipeline.entry import leave
    except ImportError:
        return
    leave(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--test-takers", type=int, default=20)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout measured in every round too")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    from jofi_pipeline.simulator.process import SimulatorProcess

    checkouts = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    for checkout in checkouts.values():
        compile_checkout(checkout)  # both sides start from bytecode (targets.compile_checkout)
    rows = []
    with SimulatorProcess(test_takers=args.test_takers, seed=42) as sim, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JOFI_API_BASE_URL": sim.base_url, "JOFI_LIVE_API_KEY": sim.live_key, "DAGSTER_DISABLE_TELEMETRY": "1"}
        env.pop("DAGSTER_HOME", None)
        for name, checkout in checkouts.items():  # one project instance per checkout, kept across rounds
            (Path(tmp) / name).mkdir()
            shutil.copy(checkout / "dagster.yaml", Path(tmp) / name / "dagster.yaml")
        for round_no in range(args.rounds):
            for name, checkout in checkouts.items():
                load = load_average()
                command = [str(checkout / ".venv" / "bin" / "python"), str(Path(__file__).resolve()),
                           "--child", str(Path(tmp) / f"data-{name}-{round_no}")]
                stdout, stderr, _, whole, _, code = run_process(command, env, cwd=Path(tmp) / name)
                if code != 0:
                    print(f"{name} failed:\n{stderr[-2000:]}", file=sys.stderr)
                    return 1
                *_, phases, before_exit = [json.loads(line) for line in stdout.strip().splitlines()]
                phases["exit"] = whole - before_exit["before exit"]
                rows.append((name, round_no + 1, phases, load))

    print(f"CPU seconds per phase of a CLI-style live sync, {args.test_takers} test takers (round 1 creates the instance)")
    print(f"{'checkout':<10}{'round':>6}" + "".join(f"{p:>15}" for p in PHASES) + f"{'events':>8}  load")
    for name, round_no, phases, load in rows:
        print(f"{name:<10}{round_no:>6}" + "".join(f"{phases[p]:>15.2f}" for p in PHASES) + f"{phases['events']:>8}  {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
