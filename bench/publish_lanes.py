"""Publish lanes bench: one publish after the other against three lanes at once (publish.PUBLISH_LANES).

Builds a warehouse with a simulator (no latency, cursor paging), syncs `--days` simulated days,
and keeps the folder as the last night's sync left it just before its publish
(history_patch.folder_before_last_publish). It then publishes copies of that folder, alternating
one lane and three lanes `--repeats` times each, and prints the median wall and CPU time of each.
Alternating in one process makes the comparison fair on a machine whose speed drifts.

    uv run --frozen python bench/publish_lanes.py [--test-takers 1000] [--days 4] [--repeats 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from history_patch import folder_before_last_publish  # noqa: E402  (bench/history_patch.py)
from targets import load_average  # noqa: E402  (bench/targets.py)
from jofi_pipeline.warehouse import WarehouseStore  # noqa: E402
from jofi_pipeline.warehouse import publish as publish_module  # noqa: E402


def publish_copy(kept: Path, scratch: Path, lanes: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one publish of a copy of `kept` with `lanes` lanes."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(kept, scratch, symlinks=True)
    publish_module.PUBLISH_LANES = lanes
    try:
        with WarehouseStore(scratch, "live").open_run("bench-publish-lanes", datetime.now(UTC)) as run:
            wall, cpu = time.perf_counter(), time.process_time()
            run.publish()
            return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-takers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    lanes = max(publish_module.PUBLISH_LANES, 2)  # compared with 1, whatever the module's setting
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="jofi-publish-lanes-") as tmp:
        data, kept, scratch = Path(tmp) / "data", Path(tmp) / "kept", Path(tmp) / "scratch"
        print(f"  building {args.test_takers} test takers, {args.days} nights ...", file=sys.stderr, flush=True)
        folder_before_last_publish(data, kept, args.test_takers, args.days)
        runs: dict[int, list[tuple[float, float]]] = {1: [], lanes: []}
        for repeat in range(args.repeats):
            for n in ((1, lanes) if repeat % 2 else (lanes, 1)):
                runs[n].append(publish_copy(kept, scratch, n))
            loads.append(load_average())
    print(f"\npublish lanes bench: {args.test_takers} test takers, {args.days} nights, {args.repeats} publishes each, alternated")
    for n, measured in runs.items():
        print(f"{n} lane{'s' if n > 1 else ''}: median {statistics.median(m[0] for m in measured):.3f} s wall, "
              f"{statistics.median(m[1] for m in measured):.3f} s CPU")
    one, many = (statistics.median(m[0] for m in runs[n]) for n in (1, lanes))
    print(f"{lanes} lanes take {many / one - 1:+.1%} wall time against 1")
    print("load while measuring: " + "; ".join(dict.fromkeys(loads)))


if __name__ == "__main__":
    main()
