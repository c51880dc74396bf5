"""Benchmark: the fixed CPU of one sync, what every sync pays whatever the account's size.

A small world (15 test takers, cursor paging, no latency, ~90 requests for the first sync, ~70
for a nightly) makes the per-sync work (opening the work database, the schema step, the publish
gate, building and switching the published copy, the HTTP client) show against the per-record
work. In one process, like the test suite and a Dagster run: `run_sync` into a new folder each time
("first sync") and into one folder after the simulator's clock moved a day ("nightly"). CPU is the
process's own (all its threads: DuckDB's too; the simulator runs in another process). The first
round of each kind warms the imports and is not counted.

    .venv/bin/python bench/sync_fixed_cost.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def one_sync(sim, store) -> tuple[float, float, int]:
    from jofi_pipeline.api import ClientConfig, JofiClient
    from jofi_pipeline.sync import SyncOptions, run_sync

    async def go():
        async with JofiClient.from_env("live", base_url=sim.base_url, config=ClientConfig()) as client:
            return await run_sync(client, store, SyncOptions())

    wall, cpu = time.perf_counter(), time.process_time()
    report = asyncio.run(go())
    return time.process_time() - cpu, time.perf_counter() - wall, sum(report.requests.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    from jofi_pipeline.simulator.process import SimulatorProcess
    from jofi_pipeline.warehouse import WarehouseStore

    load = os.getloadavg()[0]
    with SimulatorProcess(test_takers=15, seed=21, pagination="cursor") as sim, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(sim.env())
        first, nightly = [], []
        for i in range(args.rounds + 1):
            first.append(one_sync(sim, WarehouseStore(Path(tmp) / f"first-{i}", "live")))
        store = WarehouseStore(Path(tmp) / "nightly", "live")
        one_sync(sim, store)
        for _ in range(args.rounds + 1):
            sim.advance(1)
            nightly.append(one_sync(sim, store))
    print(f"{'sync':<12}{'CPU s (median)':>16}{'wall s':>10}{'requests':>10}   rounds={args.rounds}, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    for name, runs in (("first sync", first[1:]), ("nightly", nightly[1:])):
        print(f"{name:<12}{statistics.median(r[0] for r in runs):>16.3f}{statistics.median(r[1] for r in runs):>10.2f}"
              f"{statistics.median(r[2] for r in runs):>10.0f}")


if __name__ == "__main__":
    sys.exit(main())
