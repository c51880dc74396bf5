"""Coverage beyond the capped lists: prints how much of the simulated account the warehouse holds.

    uv run --frozen python bench/coverage.py [--days 3 3 4] [--daily-invitations 70] [--watch-days 10]

Scenarios on the same seeded account (activity far beyond the 30/50-item windows between
syncs): webhooks delivering to our receiver; webhooks off (what coverage reports missing, and
whether that equals the truth); webhooks off, then `import-ids` of the missing ids and one sync;
webhooks off with the window watcher polling every 2 simulated hours and a nightly sync; and the
watcher started with an interval that is too long (24 h), which reports exactly what it missed,
shortens its interval and polls at the shortened one from then on.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from jofi_pipeline.api import JofiClient  # noqa: E402
from jofi_pipeline.entities import CAPPED_LISTS, ENTITIES  # noqa: E402
from jofi_pipeline.settings import ENV_LIVE_KEY  # noqa: E402
from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from jofi_pipeline.sync import run_sync  # noqa: E402
from jofi_pipeline.warehouse import WarehouseStore  # noqa: E402
from jofi_pipeline.webhooks.imports import import_ids  # noqa: E402
from jofi_pipeline.webhooks.watch import client_config, poll_once  # noqa: E402
from jofi_pipeline.webhooks.watch_log import format_interval  # noqa: E402
from jofi_pipeline.harness.receiver import SECRET, ReceiverThread  # noqa: E402
from jofi_pipeline.harness.truth import held_ids, truth_ids  # noqa: E402

CAPPED = CAPPED_LISTS


def sync(sim, data_dir: Path):
    async def run():
        async with JofiClient(sim.live_key, mode="live", base_url=sim.base_url) as client:
            return await run_sync(client, WarehouseStore(data_dir, "live"))

    return asyncio.run(run())


def held(sim, data_dir: Path) -> dict[str, tuple[set, set]]:
    truth = sim.truth("live")
    return {e: (held_ids(data_dir, "live", e), truth_ids(truth, e)) for e in CAPPED}


def row(name: str, counts: dict[str, tuple[set, set]], extra: str = "") -> str:
    cells = [f"{len(h & w)}/{len(w)} ({len(h & w) / max(len(w), 1):.0%})" for h, w in counts.values()]
    return f"{name:<44}" + "".join(f"{c:>30}" for c in cells) + f"  {extra}"


CREATED = {"invitations": "invitations_created", "test_takers": "test_takers_created",
           "career_navigation_profiles": "career_navigation_profiles_created"}


async def watched(sim, data_dir: Path, days: int, every_h: int, adapt: bool) -> dict:
    """`days` simulated days: a poll every `every_h` simulated hours (the watcher on the simulator's
    clock), a sync every midnight. With `adapt`, the interval follows what the watcher chose after a
    window turned over (whole hours: the simulator's clock moves in hours)."""
    sync_now = lambda: asyncio.to_thread(sync, sim, data_dir)  # noqa: E731
    await sync_now()
    clock = {"now": datetime.fromisoformat(sim.info()["now"])}
    created: dict[str, set] = {e: set() for e in CAPPED}
    listed: dict[str, set] = {e: set() for e in CAPPED}
    out = {"polls": 0, "requests": 0, "gaps": [], "interval_h": every_h}
    async with JofiClient(sim.live_key, mode="live", base_url=sim.base_url, config=client_config()) as client:
        async def poll() -> None:
            report = await poll_once(client, data_dir, interval_s=out["interval_h"] * 3600, now=lambda: clock["now"])
            out["polls"] += 1
            out["requests"] += report.requests
            out["safe"] = report.reason
            for entity, outcome in report.lists.items():
                listed[entity] |= set(outcome.listed)
            out["gaps"].extend(report.gaps)
            if adapt and report.gaps:
                out["interval_h"] = max(1, int(report.interval_s // 3600))

        await poll()
        for _ in range(days):
            hour = 0
            while hour < 24:
                step = min(out["interval_h"], 24 - hour)
                summary = await asyncio.to_thread(sim.advance, hours=step)
                clock["now"] = datetime.fromisoformat(summary["now"])
                hour += step
                for entity, key in CREATED.items():
                    created[entity] |= {str(i) for i in summary[key]}
                await poll()
            await sync_now()
    out["never_listed"] = {e: len(created[e] - listed[e]) for e in CAPPED}
    out["reported"] = {e: sum(g.missed for g in out["gaps"] if g.entity == e) for e in CAPPED}
    return out


def watcher_rows(args, account: dict, tmp: Path) -> list[str]:
    lines = []
    for name, every_h, adapt in (("webhooks off, watcher every 2 h", 2, False),
                                  ("webhooks off, watcher every 24 h (adapts)", 24, True)):
        data_dir = tmp / f"watch-{every_h}"
        with SimulatorProcess(**account) as sim:
            os.environ[ENV_LIVE_KEY] = sim.live_key
            run = asyncio.run(watched(sim, data_dir, args.watch_days, every_h, adapt))
            counts = held(sim, data_dir)
        per_day = run["requests"] / args.watch_days
        extra = f"watcher: {run['polls']} polls, {per_day:.0f} requests/day"
        if run["gaps"]:
            first = run["gaps"][0]
            exact = run["reported"] == run["never_listed"]
            extra += (f"; missed (reported) {', '.join(f'{e}={n}' for e, n in run['reported'].items())}"
                      f" = never listed in the truth: {exact}; interval {format_interval(first.interval_before_s)}"
                      f" -> {format_interval(first.interval_after_s)} at {first.detected_at[:16]},"
                      f" then every {run['interval_h']} h, {len(run['gaps'])} gap(s) in all")
        else:
            extra += f"; no window turned over ({run['safe']})"
        lines.append(row(name, counts, extra))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[3, 3, 4])
    parser.add_argument("--daily-invitations", type=int, default=70)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--watch-days", type=int, default=10, help="simulated days of the watcher scenarios")
    parser.add_argument("--only-watcher", action="store_true", help="run only the watcher scenarios")
    args = parser.parse_args()
    account = {"test_takers": 20, "seed": args.seed, "daily_invitations": args.daily_invitations}
    lines = []
    with tempfile.TemporaryDirectory(prefix="jofi-coverage-") as tmp:
        lines.extend(watcher_rows(args, account, Path(tmp)))
        if args.only_watcher:
            return print_table(args, lines)
        on, off = Path(tmp) / "on", Path(tmp) / "off"
        with SimulatorProcess(**account) as sim, ReceiverThread(on) as receiver:
            sim.set_webhooks(url=receiver.url, secret=SECRET)
            sync(sim, on)
            for days in args.days:
                sim.advance(days)
                sim.flush_webhooks()
                sync(sim, on)
            lines.append(row(f"webhooks on, after {sum(args.days)} days", held(sim, on)))
        with SimulatorProcess(**account) as sim:
            sync(sim, off)
            for days in args.days:
                sim.advance(days)
                report = sync(sim, off)
            counts = held(sim, off)
            reported = {c.entity: c.missing for c in report.coverage}
            exact = all(reported[e] == len(w) - len(h) for e, (h, w) in counts.items())
            lines.append(row("webhooks off", counts, "coverage reports missing: "
                             + ", ".join(f"{e}={reported[e]}" for e in CAPPED) + f" (equals truth: {exact})"))
            for entity, (have, want) in counts.items():
                import_ids("\n".join(map(str, sorted(want - have))) + "\n", ENTITIES[entity].import_kind, "live", off)
            sync(sim, off)
            lines.append(row("webhooks off, after import-ids + 1 sync", held(sim, off)))
    print_table(args, lines)


def print_table(args, lines: list[str]) -> None:
    print(f"\ncoverage of a simulated account (seed {args.seed}, ~{args.daily_invitations} invitations/day; webhook "
          f"scenarios synced at day 0 and after {', '.join(map(str, args.days))} days, watcher scenarios over "
          f"{args.watch_days} days with a sync every midnight)")
    print(f"{'scenario':<44}" + "".join(f"{e:>30}" for e in CAPPED))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
