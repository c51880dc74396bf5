"""History patch bench: what bringing the published copy's `<table>_history` tables up to date costs.

A nightly publish patches each changed history table in the copy of the previous version's file
(warehouse/publish_history.py) instead of copying it whole. This bench builds a warehouse with a
simulator (no latency, cursor paging), syncs `--days` simulated days, and keeps the folder as the
last night's sync left it just before its publish. It then publishes copies of that folder
`--repeats` times and prints, per repeat, the CPU time (user + sys of this process: the publish
runs alone) of the history patches and of the whole publish.

    uv run --frozen python bench/history_patch.py [--test-takers 3000] [--days 5] [--repeats 3]

To compare two checkouts, run the same file with each one's code first on `sys.path`:
`PYTHONPATH=/other/checkout .venv/bin/python bench/history_patch.py` (the folder is rebuilt by
each run, with the same seed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from targets import load_average  # noqa: E402  (bench/targets.py)
from jofi_pipeline.api import JofiClient  # noqa: E402
from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from jofi_pipeline.sync import run_sync  # noqa: E402
from jofi_pipeline.warehouse import WarehouseStore  # noqa: E402
from jofi_pipeline.warehouse import publish as publish_module  # noqa: E402
from jofi_pipeline.warehouse import store as store_module  # noqa: E402


def folder_before_last_publish(data: Path, kept: Path, test_takers: int, days: int) -> None:
    """Sync `days` nights into `data`; copy the folder into `kept` as the last night's sync stands
    just before it publishes (its work database checkpointed, so the copy holds everything)."""
    with SimulatorProcess(test_takers=test_takers, seed=16, pagination="cursor", daily_invitations=20) as sim:
        os.environ["JOFI_LIVE_API_KEY"] = sim.live_key

        async def one_sync():
            async with JofiClient.from_env("live", base_url=sim.base_url) as client:
                return await run_sync(client, WarehouseStore(data, "live"))

        asyncio.run(one_sync())
        for _ in range(days - 1):
            sim.advance(1)
            asyncio.run(one_sync())
        real_publish = store_module.RunWriter.publish

        def keep_then_publish(self):
            if self._ahead is not None:  # its batch still writing, DuckDB refuses the CHECKPOINT (publish_ahead.py)
                self._ahead.finish()
            self.con.execute("CHECKPOINT")
            # Not the folder this run staged for its publish (no manifest yet): a publish of the
            # kept copy would remove it in the background while it is timed.
            staged = [self._staged.version_dir.name] if self._staged is not None else []
            shutil.copytree(data, kept, symlinks=True, ignore=shutil.ignore_patterns("writer.lock", *staged))
            return real_publish(self)

        store_module.RunWriter.publish = keep_then_publish
        try:
            sim.advance(1)
            asyncio.run(one_sync())
        finally:
            store_module.RunWriter.publish = real_publish


def publish_once(kept: Path, scratch: Path) -> tuple[float, float, int]:
    """(CPU of the history patches, CPU of the publish, history tables patched) for one publish of a copy of `kept`."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(kept, scratch, symlinks=True)
    spent = {"patches": 0.0, "patched": 0}
    real_patch = publish_module.patch_histories

    def timed_patch(*args, **kwargs):
        started = time.process_time()
        try:
            patched = real_patch(*args, **kwargs)
        finally:
            spent["patches"] += time.process_time() - started
        spent["patched"] += len(patched)
        return patched

    publish_module.patch_histories = timed_patch
    try:
        with WarehouseStore(scratch, "live").open_run("bench-history-patch", datetime.now(UTC)) as run:
            started = time.process_time()
            run.publish()
            whole = time.process_time() - started
    finally:
        publish_module.patch_histories = real_patch
        shutil.rmtree(scratch, ignore_errors=True)
    return spent["patches"], whole, spent["patched"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-takers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jofi-history-patch-") as tmp:
        data, kept, scratch = Path(tmp) / "data", Path(tmp) / "kept", Path(tmp) / "scratch"
        print(f"  building {args.test_takers} test takers, {args.days} nights ...", file=sys.stderr, flush=True)
        folder_before_last_publish(data, kept, args.test_takers, args.days)
        runs = []
        for repeat in range(1, args.repeats + 1):
            runs.append(publish_once(kept, scratch))
            print(f"  repeat {repeat}: history patches {runs[-1][0]:.3f} s CPU, publish {runs[-1][1]:.3f} s CPU "
                  f"({runs[-1][2]} tables patched; {load_average()})", file=sys.stderr, flush=True)
    print(f"\nhistory patch bench ({publish_module.__file__}): {args.test_takers} test takers, {args.days} nights, "
          f"{args.repeats} publishes of the last night")
    print(f"history patches: median {statistics.median(r[0] for r in runs):.3f} s CPU; "
          f"whole publish: median {statistics.median(r[1] for r in runs):.3f} s CPU; "
          f"tables patched: {runs[0][2]}")


if __name__ == "__main__":
    main()
