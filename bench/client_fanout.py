"""Benchmark: how close does a scorecard fan-out get to its theoretical bound?

Starts a simulator subprocess with 50 ms latency and runs 2,000 scorecard requests through
`JofiClient.fan_out` in four settings. The bound of a run is min(rate limit, concurrency / latency):
the best any client could do. Prints a table; exits non-zero when a target is missed.

    uv run --frozen python bench/client_fanout.py [--items 2000] [--latency-ms 50] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import sys
import time
from dataclasses import dataclass

from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.simulator.process import SimulatorProcess


@dataclass
class Scenario:
    name: str
    concurrency: int
    client_rate: float  # requests/s, 0 = none
    server_rate: float  # requests/s, 0 = none
    error_rate: float
    items: int
    target_ratio: float | None  # achieved / bound must reach this
    zero_failures: bool = False


@dataclass
class Result:
    scenario: Scenario
    seconds: float
    ok: int
    failed: int
    requests: int
    retries: int
    bound: float

    @property
    def items_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def ratio(self) -> float:
        return self.items_per_s / self.bound

    @property
    def passed(self) -> bool:
        target = self.scenario.target_ratio
        return (target is None or self.ratio >= target) and self.failed == 0


def scenarios(items: int) -> list[Scenario]:
    return [
        Scenario("concurrency 32, no rate limit", 32, 0, 0, 0.0, items, 0.85),
        Scenario("rate limit 100/s (client + server)", 32, 100, 100, 0.0, items, 0.90),
        Scenario("5% 5xx + rate limit 100/s", 32, 100, 100, 0.05, items, None, zero_failures=True),
        Scenario("sequential (concurrency 1)", 1, 0, 0, 0.0, min(items, 200), None),
    ]


async def run(sim: SimulatorProcess, pairs: list[tuple[int, str]], s: Scenario, latency_s: float) -> Result:
    sim.clear_faults()
    faults = {"latency_ms": latency_s * 1000, "seed": 7}
    if s.server_rate:
        faults["rate_limit_per_s"] = s.server_rate
    if s.error_rate:
        faults["error_rate"] = s.error_rate
    sim.set_faults(**faults)
    config = ClientConfig(max_concurrency=s.concurrency, requests_per_second=s.client_rate, max_retries=8)
    work = itertools.islice(itertools.cycle(pairs), s.items)
    ok = failed = 0
    async with JofiClient(api_key=sim.live_key, mode="live", base_url=sim.base_url, config=config) as client:
        await client.healthcheck()  # open a connection before the clock starts
        started = time.perf_counter()
        async for outcome in client.fan_out(lambda pair: client.get("scorecards", pair), work):
            if outcome.ok:
                ok += 1
            else:
                failed += 1
                print(f"  failed {outcome.item}: {outcome.error}", file=sys.stderr)
        seconds = time.perf_counter() - started
        requests = client.requests_total - client.request_counts().get("/healthcheck", 0)
        retries = sum(client.counts.retries_by_reason.values())
    bounds = [s.concurrency / latency_s]
    bounds += [r for r in (s.client_rate, s.server_rate) if r]
    return Result(s, seconds, ok, failed, requests, retries, min(bounds))


def print_table(results: list[Result], latency_ms: float) -> None:
    header = (f"{'scenario':38} {'items':>5} {'ok':>5} {'fail':>4} {'reqs':>5} {'retry':>5} "
              f"{'secs':>6} {'items/s':>8} {'req/s':>7} {'bound':>6} {'ratio':>6} {'target':>10}  result")
    print(f"\nscorecard fan-out, simulator latency {latency_ms:g} ms")
    print(header)
    print("-" * len(header))
    for r in results:
        s = r.scenario
        target = f">= {s.target_ratio:.2f}" if s.target_ratio is not None else ("0 failed" if s.zero_failures else "-")
        print(f"{s.name:38} {s.items:>5} {r.ok:>5} {r.failed:>4} {r.requests:>5} {r.retries:>5} "
              f"{r.seconds:>6.2f} {r.items_per_s:>8.1f} {r.requests_per_s:>7.1f} {r.bound:>6.0f} {r.ratio:>6.2f} "
              f"{target:>10}  {'PASS' if r.passed else 'MISS'}")


async def main_async(args: argparse.Namespace) -> list[Result]:
    latency_s = args.latency_ms / 1000
    with SimulatorProcess() as sim:
        truth = sim.truth("live")
        short_names = [sp["short_name"] for sp in truth["score_profiles"]]
        takers = [t["id"] for t in truth["test_takers"]]
        pairs = [(t, sp) for t in takers for sp in short_names]
        print(f"simulator at {sim.root_url}: {len(takers)} test takers x {len(short_names)} score profiles "
              f"= {len(pairs)} distinct scorecards")
        chosen = [s for s in scenarios(args.items) if not args.only or args.only in s.name]
        results = []
        for s in chosen:
            results.append(await run(sim, pairs, s, latency_s))
            print_table(results[-1:], args.latency_ms) if args.verbose else None
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--only", help="run scenarios whose name contains this")
    parser.add_argument("--profile", action="store_true", help="cProfile the client side, print the top 25")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    results = asyncio.run(main_async(args))
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    print_table(results, args.latency_ms)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
