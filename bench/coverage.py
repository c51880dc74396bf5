"""Coverage beyond the capped lists: prints how much of the simulated account the warehouse holds.

    uv run --frozen python bench/coverage.py [--days 3 3 4] [--daily-invitations 70]

Three scenarios on the same seeded account (activity far beyond the 30/50-item windows between
syncs): webhooks delivering to our receiver; webhooks off (what coverage reports missing, and
whether that equals the truth); webhooks off, then `import-ids` of the missing ids and one sync.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from jofi_pipeline.settings import ENV_LIVE_KEY  # noqa: E402
from jofi_pipeline.simulator.process import SimulatorProcess  # noqa: E402
from jofi_pipeline.sync import SyncOptions, run_sync  # noqa: E402
from jofi_pipeline.webhooks.imports import import_ids  # noqa: E402
from jofi_pipeline_tests.e2e.helpers import ids, published, truth_ids  # noqa: E402
from jofi_pipeline_tests.webhooks.helpers import SECRET, ReceiverThread  # noqa: E402

CAPPED = ("invitations", "test_takers", "career_navigation_profiles")
KINDS = {"invitations": "invitations", "test_takers": "test-takers", "career_navigation_profiles": "profiles"}


def sync(sim, data_dir: Path):
    os.environ[ENV_LIVE_KEY] = sim.live_key
    options = SyncOptions(mode="live", base_url=sim.base_url, data_dir=data_dir, api_key_env_var=ENV_LIVE_KEY)
    return asyncio.run(run_sync(options))


def held(sim, data_dir: Path) -> dict[str, tuple[set, set]]:
    truth = sim.truth("live")
    with published(data_dir, "live") as con:
        return {e: (ids(con, e), truth_ids(truth, e)) for e in CAPPED}


def row(name: str, counts: dict[str, tuple[set, set]], extra: str = "") -> str:
    cells = [f"{len(h & w)}/{len(w)} ({len(h & w) / max(len(w), 1):.0%})" for h, w in counts.values()]
    return f"{name:<40}" + "".join(f"{c:>30}" for c in cells) + f"  {extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[3, 3, 4])
    parser.add_argument("--daily-invitations", type=int, default=70)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    account = {"test_takers": 20, "seed": args.seed, "daily_invitations": args.daily_invitations}
    lines = []
    with tempfile.TemporaryDirectory(prefix="jofi-coverage-") as tmp:
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
                import_ids("\n".join(map(str, sorted(want - have))) + "\n", KINDS[entity], "live", off)
            sync(sim, off)
            lines.append(row("webhooks off, after import-ids + 1 sync", held(sim, off)))
    print(f"\ncoverage of a simulated account (seed {args.seed}, ~{args.daily_invitations} invitations/day, "
          f"synced at day 0 and after {', '.join(map(str, args.days))} days)")
    print(f"{'scenario':<40}" + "".join(f"{e:>30}" for e in CAPPED))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
