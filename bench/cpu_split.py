"""Benchmark: CPU per request of our HTTP client and of the simulator, for a by-id fan-out alone.

No warehouse, no merges: only `JofiClient.get` fanned out (scorecards, ~4 KB bodies) against a
simulator with 50 ms latency. It answers one question about the bound targets of `targets.py`:
can two cores serve `concurrency / latency` requests per second at all, when the simulator runs
on the same machine? (client ms + simulator ms) x bound / 1000 = cores needed.

    .venv/bin/python bench/cpu_split.py                  # concurrency 16 and 64, 3,000 GETs each
    .venv/bin/python bench/cpu_split.py --concurrency 64 --requests 5000

The client's CPU is this process's (`time.process_time`); the simulator's is read from
/proc/<pid>/stat (Linux), before and after the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

LATENCY_MS = 50.0


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fan_out(sim, concurrency: int, requests: int) -> str:
    from jofi_pipeline.api import ClientConfig, JofiClient

    config = ClientConfig(max_concurrency=concurrency)
    async with JofiClient.from_env("live", base_url=sim.base_url, config=config) as client:
        test_takers = [t["id"] for t in (await client.list("test_takers")).items]
        profiles = [p["short_name"] for p in (await client.list("score_profiles")).items]
        keys = [(t, p) for t in test_takers for p in profiles]
        keys = (keys * (requests // max(len(keys), 1) + 1))[:requests]
        async for _ in client.fan_out(lambda key: client.get("scorecards", key), sorted(set(keys))):
            pass  # warm-up: the simulator builds a scorecard on first request and keeps it
        sim_before, client_before, started = process_cpu_seconds(sim.pid), time.process_time(), time.perf_counter()
        done = failed = 0
        async for outcome in client.fan_out(lambda key: client.get("scorecards", key), keys):
            done += 1
            failed += outcome.error is not None
        wall = time.perf_counter() - started
        client_ms = 1000 * (time.process_time() - client_before) / done
        sim_ms = 1000 * (process_cpu_seconds(sim.pid) - sim_before) / done
    bound = concurrency / (LATENCY_MS / 1000)
    cores = (client_ms + sim_ms) * bound / 1000
    return (f"concurrency {concurrency}: {done} GETs ({failed} failed) in {wall:.1f} s = {done / wall:.0f}/s, "
            f"bound {bound:.0f}/s; client {client_ms:.2f} ms CPU/request, simulator {sim_ms:.2f} ms; "
            f"at the bound they need {cores:.2f} cores  (load {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    from jofi_pipeline.simulator.process import SimulatorProcess

    sim = SimulatorProcess(test_takers=500, pagination="cursor", seed=42, latency_ms=LATENCY_MS).start()
    try:
        os.environ["JOFI_LIVE_API_KEY"] = sim.live_key
        for concurrency in args.concurrency or [16, 64]:
            print(asyncio.run(fan_out(sim, concurrency, args.requests)), flush=True)
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
