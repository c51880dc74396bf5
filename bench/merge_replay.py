"""Benchmark: the CPU of the merges alone, by replaying recorded upsert batches into a fresh warehouse.

A live sync's CPU mixes the HTTP client, the event loop and the merges; the merges are the part
written by `RunWriter.upsert`. `record` runs a full sync (and, with --nightly, the nightly after
one simulated day) against a simulator, saving every write the run's writer was asked to do (its
arguments, timestamps included) to a pickle. `replay` opens a fresh work database, opens a run,
replays the full sync's writes and then the nightly's, and prints the process CPU of each part
(min of --repeat). `dump` replays once and prints a digest of every table, so two versions of the
store can be shown to write exactly the same rows.

    .venv/bin/python bench/merge_replay.py record /dev/shm/batches.pkl --test-takers 2000 --nightly
    .venv/bin/python bench/merge_replay.py replay /dev/shm/batches.pkl --repeat 3
    .venv/bin/python bench/merge_replay.py dump /dev/shm/batches.pkl
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import pickle
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

WRITES = ("upsert", "mark_deleted", "forget_missed", "remember_missed")


def record(args: argparse.Namespace) -> None:
    from jofi_pipeline.api import ClientConfig, JofiClient
    from jofi_pipeline.simulator.process import SimulatorProcess
    from jofi_pipeline.sync import run_sync
    from jofi_pipeline.warehouse import WarehouseStore
    from jofi_pipeline.warehouse.store import RunWriter

    calls: list[tuple[str, tuple, dict]] = []
    for name in WRITES:
        real = getattr(RunWriter, name)

        def wrapped(self, *a, __real=real, __name=name, **kw):
            calls.append((__name, pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(kw))))
            return __real(self, *a, **kw)

        setattr(RunWriter, name, wrapped)
    runs = []
    with tempfile.TemporaryDirectory(prefix="jofi-rec-") as tmp, SimulatorProcess(
        test_takers=args.test_takers, pagination="cursor", seed=42
    ) as sim:
        os.environ["JOFI_LIVE_API_KEY"] = sim.live_key
        config = ClientConfig(max_concurrency=16, requests_per_second=0)

        async def sync():
            async with JofiClient.from_env("live", base_url=sim.base_url, config=config) as client:
                return await run_sync(client, WarehouseStore(Path(tmp), "live"))

        report = asyncio.run(sync())
        runs.append(calls[:])
        print(f"full: {report.requests_total} requests, {len(calls)} writes")
        if args.nightly:
            calls.clear()
            sim.advance(1)
            report = asyncio.run(sync())
            runs.append(calls[:])
            print(f"nightly: {report.requests_total} requests, {len(calls)} writes")
    Path(args.file).write_bytes(pickle.dumps(runs))


def _replay_into(data_dir: Path, runs: list, answers: list | None = None) -> list[float]:
    from jofi_pipeline.warehouse import WarehouseStore

    store = WarehouseStore(data_dir, "live")
    seconds = []
    for i, calls in enumerate(runs):
        with store.open_run(f"replay-{i}", datetime(2026, 1, 1 + i, tzinfo=UTC)) as writer:
            started = time.process_time()
            for name, a, kw in calls:
                answer = getattr(writer, name)(*a, **kw)
                if answers is not None:
                    answers.append((name, answer))
            seconds.append(time.process_time() - started)
    return seconds


def replay(args: argparse.Namespace) -> None:
    import pandas  # noqa: F401  (pyarrow's first conversion would import it inside the timed part)

    runs = pickle.loads(Path(args.file).read_bytes())
    # The recorded objects are millions of Python objects a live sync never holds at once: kept out
    # of the collector's full passes, which would otherwise scan them all, again and again.
    gc.collect()
    gc.freeze()
    best: list[float] | None = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="jofi-replay-", dir=args.tmp) as tmp:
            seconds = _replay_into(Path(tmp), runs)
        best = seconds if best is None else [min(a, b) for a, b in zip(best, seconds, strict=True)]
    load = os.getloadavg()[0]
    print(json.dumps({"cpu_seconds": [round(s, 3) for s in best or []], "load": round(load, 2)}))


def dump(args: argparse.Namespace) -> None:
    import duckdb

    runs = pickle.loads(Path(args.file).read_bytes())
    with tempfile.TemporaryDirectory(prefix="jofi-replay-", dir=args.tmp) as tmp:
        answers: list = []
        _replay_into(Path(tmp), runs, answers)
        print(f"{'(what each write returned)':40} {len(answers):8} {hashlib.sha256(repr(answers).encode()).hexdigest()[:16]}")
        from jofi_pipeline.warehouse import WarehouseStore

        con = duckdb.connect(str(WarehouseStore(Path(tmp), "live").work_db_path), read_only=True)
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            digest = hashlib.sha256("\n".join(sorted(repr(r) for r in rows)).encode()).hexdigest()[:16]
            print(f"{table:40} {len(rows):8} {digest}")
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("record", "replay", "dump"))
    parser.add_argument("file")
    parser.add_argument("--test-takers", type=int, default=2000)
    parser.add_argument("--nightly", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args()
    {"record": record, "replay": replay, "dump": dump}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
