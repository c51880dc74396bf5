"""How many requests per second the JOFI simulator sustains with many requests in flight.

The simulator runs in its own process (SimulatorProcess) with injected latency; the load comes
from several client processes, each a lean asyncio HTTP/1.1 client on keep-alive connections
(one request in flight per connection), so the client is not what limits the numbers.

    uv run --frozen python bench/simulator_load.py                      # 1000 in flight, 50 ms
    uv run --frozen python bench/simulator_load.py --concurrency 2000 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import time
from urllib.parse import urlsplit

from jofi_pipeline.simulator.process import SimulatorProcess


def _paths(sim: SimulatorProcess) -> list[str]:
    """A read mix like a sync's: lists, objects by id, scorecards."""
    truth = sim.truth("live")
    prefix = urlsplit(sim.base_url).path
    takers = [t["id"] for t in truth["test_takers"]][:100]
    paths = ["/test-takers", "/career-navigation-profiles", "/invitations", "/accounts"]
    paths += [f"/test-takers/{i}" for i in takers]
    paths += [f"/test-takers/{i}/scorecard?sp=JOFI-295-AS" for i in takers]
    return [prefix + p for p in paths]


async def _connection(host: str, port: int, requests: list[bytes], stop_at: float, latencies: list[float], errors: list[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        return
    i = 0
    try:
        while time.perf_counter() < stop_at:
            request = requests[i % len(requests)]
            i += 1
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                errors.append(f"status {status}")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()


def _worker(base_url: str, key: str, paths: list[str], connections: int, seconds: float, start_at: float, out: mp.Queue) -> None:
    import uvloop

    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n\r\n".encode() for p in paths
    ]

    async def main() -> tuple[list[float], list[str]]:
        latencies: list[float] = []
        errors: list[str] = []
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop_at = time.perf_counter() + seconds
        rotated = [requests[k:] + requests[:k] for k in range(connections)]
        await asyncio.gather(
            *(_connection(host, port, rotated[c % len(rotated)], stop_at, latencies, errors) for c in range(connections))
        )
        return latencies, errors

    latencies, errors = uvloop.run(main())
    out.put((latencies, errors))


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(concurrency: int, latency_ms: float, seconds: float, processes: int) -> dict:
    with SimulatorProcess(latency_ms=latency_ms) as sim:
        paths = _paths(sim)
        sim.reset_stats()
        out: mp.Queue = mp.Queue()
        start_at = time.time() + 1.0
        per = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
        workers = [
            mp.Process(target=_worker, args=(sim.base_url, sim.live_key, paths, n, seconds, start_at, out)) for n in per
        ]
        for w in workers:
            w.start()
        pid = sim._proc.pid  # noqa: SLF001 - the bench reads the server's CPU time from /proc
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
        results = [out.get() for _ in workers]
        cpu_after, wall_after = _cpu_seconds(pid), time.perf_counter()
        for w in workers:
            w.join()
        served = sim.stats()["total"]
    latencies = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [float("nan")] * 99
    return {
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "seconds": seconds,
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "server_cpu": (cpu_after - cpu_before) / (wall_after - wall_before),
        "server_counted": served,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()
    print(f"JOFI simulator load: {os.cpu_count()} CPUs, {args.client_processes} client processes, {args.seconds:g} s per row")
    header = f"{'in flight':>9} {'latency':>8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} {'srv CPU':>8}"
    print(header)
    print("-" * len(header))
    for concurrency in args.concurrency:
        r = run(concurrency, args.latency_ms, args.seconds, args.client_processes)
        print(
            f"{r['concurrency']:>9} {r['latency_ms']:>6g}ms {r['requests']:>9} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['errors']:>7} {r['server_cpu']:>7.0%}"
        )
        if r["error_kinds"]:
            print(f"          error kinds: {', '.join(r['error_kinds'])}")


if __name__ == "__main__":
    main()
