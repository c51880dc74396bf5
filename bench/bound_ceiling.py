"""Benchmark: how close to the bound a full sync could get at all, on this machine.

The bound of `targets.py` is requests / min(rate, concurrency / latency). A sync cannot beat three
things: the time before its first list request (the health check, the account GET that checks the
key's mode before anything is written, opening the store), the time after its last answer (the
last merge and the publish, which must see every answer), and the pace of the client and the
simulator themselves on two shared cores. This bench measures all three on one simulator (1,000
test takers, cursor paging, 50 ms latency; warmed by one untimed sync):

  sync     a bare full sync (`run_sync`, no Dagster), each GET it sends recorded with its times;
  replay   exactly that sync's GETs again, fanned out at the same concurrency with no order
           between them and nothing stored: the pace of the requests alone.

It prints, per round and as medians: the sync's ratio to the bound; its start, its end, its mean
request and the share of request slots busy between them; the replay's ratio; and the ceiling
bound / (start + replay + end): what the sync would reach if the requests ran at the replay's
pace with no gap between the steps of the run.

    .venv/bin/python bench/bound_ceiling.py                    # concurrency 64, 3 rounds
    .venv/bin/python bench/bound_ceiling.py --concurrency 16 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LATENCY_MS = 50.0
TEST_TAKERS = 1000


@dataclass(frozen=True)
class Sent:
    """One GET of the sync: what it asked for, and when (perf_counter seconds)."""

    route: str
    path: str
    params: dict | None
    began: float
    ended: float


@dataclass(frozen=True)
class Round:
    requests: int
    sync_seconds: float
    start: float  # run_sync's start to its first list request
    end: float  # its last answer to run_sync's return
    mean_request_ms: float
    busy: float  # request slots busy between the first list request and the last answer
    replay_seconds: float


def recording(transport, sent: list[Sent]) -> None:
    """Record every GET this transport answers (retries inside get_json count once, as in the bound)."""
    get_json = transport.get_json

    async def timed(route, path, *, params=None, **kwargs):
        began = time.perf_counter()
        try:
            return await get_json(route, path, params=params, **kwargs)
        finally:
            sent.append(Sent(route, path, dict(params) if params else None, began, time.perf_counter()))

    transport.get_json = timed


async def one_sync(sim, data_dir: Path, concurrency: int) -> tuple[float, float, list[Sent]]:
    from jofi_pipeline.api import ClientConfig, JofiClient
    from jofi_pipeline.sync import run_sync
    from jofi_pipeline.warehouse import WarehouseStore

    sent: list[Sent] = []
    config = ClientConfig(max_concurrency=concurrency)
    async with JofiClient.from_env("live", base_url=sim.base_url, config=config) as client:
        recording(client._transport, sent)
        began = time.perf_counter()
        report = await run_sync(client, WarehouseStore(data_dir, "live"))
        ended = time.perf_counter()
    if report.status != "succeeded":
        raise SystemExit(f"the sync ended {report.status}: {report.error}")
    return began, ended, sent


async def replay(sim, sent: list[Sent], concurrency: int) -> float:
    """The same GETs, fanned out with no order between them; their bodies parsed, nothing stored."""
    from jofi_pipeline.api import ClientConfig, JofiClient

    config = ClientConfig(max_concurrency=concurrency)
    async with JofiClient.from_env("live", base_url=sim.base_url, config=config) as client:
        transport = client._transport
        began = time.perf_counter()
        async for outcome in client.fan_out(lambda s: transport.get_json(s.route, s.path, params=s.params), sent):
            if outcome.error is not None:
                raise SystemExit(f"replay: {outcome.error}")
        return time.perf_counter() - began


def measure(sim, tmp: Path, concurrency: int, label: str) -> Round:
    began, ended, sent = asyncio.run(one_sync(sim, tmp / label, concurrency))
    from jofi_pipeline.api.client import HEALTHCHECK_ROUTE
    from jofi_pipeline.entities import entity

    before_lists = (HEALTHCHECK_ROUTE, entity("account").by_id.template)
    listed = [s for s in sent if s.route not in before_lists]
    first_list = min(s.began for s in listed)
    last_answer = max(s.ended for s in sent)
    busy_seconds = sum(min(s.ended, last_answer) - max(s.began, first_list) for s in listed)
    replay_seconds = asyncio.run(replay(sim, sent, concurrency))
    return Round(
        requests=len(sent),
        sync_seconds=ended - began,
        start=first_list - began,
        end=ended - last_answer,
        mean_request_ms=1000 * statistics.mean(s.ended - s.began for s in sent),
        busy=busy_seconds / (concurrency * (last_answer - first_list)),
        replay_seconds=replay_seconds,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from jofi_pipeline.simulator.process import SimulatorProcess

    bound_rate = args.concurrency / (LATENCY_MS / 1000)
    load = os.getloadavg()[0]
    rows = []
    with SimulatorProcess(test_takers=TEST_TAKERS, pagination="cursor", seed=42, latency_ms=LATENCY_MS) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        os.environ["JOFI_LIVE_API_KEY"] = sim.live_key
        measure(sim, Path(tmp), args.concurrency, "warm")  # the simulator builds each scorecard once
        print(f"concurrency {args.concurrency}, {TEST_TAKERS:,} test takers, cursor paging, {LATENCY_MS:.0f} ms latency; "
              f"bound {bound_rate:.0f} requests/s")
        print(f"{'round':<7}{'requests':>9}{'sync s':>8}{'ratio':>7}{'start s':>9}{'end s':>7}{'mean ms':>9}"
              f"{'busy':>6}{'replay s':>10}{'replay':>8}{'ceiling':>9}")
        for i in range(args.rounds):
            r = measure(sim, Path(tmp), args.concurrency, f"round-{i}")
            bound = r.requests / bound_rate
            row = (r.requests, r.sync_seconds, bound / r.sync_seconds, r.start, r.end, r.mean_request_ms, r.busy,
                   r.replay_seconds, bound / r.replay_seconds, bound / (r.start + r.replay_seconds + r.end))
            rows.append(row)
            print(f"{i + 1:<7}{row[0]:>9}{row[1]:>8.2f}{row[2]:>7.3f}{row[3]:>9.3f}{row[4]:>7.3f}{row[5]:>9.1f}"
                  f"{row[6]:>6.2f}{row[7]:>10.2f}{row[8]:>8.3f}{row[9]:>9.3f}", flush=True)
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"{'median':<7}{med[0]:>9.0f}{med[1]:>8.2f}{med[2]:>7.3f}{med[3]:>9.3f}{med[4]:>7.3f}{med[5]:>9.1f}"
          f"{med[6]:>6.2f}{med[7]:>10.2f}{med[8]:>8.3f}{med[9]:>9.3f}   load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
