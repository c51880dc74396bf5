"""Publish steps bench: where a nightly publish's time goes, step by step, with history and without.

Builds two warehouses of one simulated world (bench/history.py's: cursor paging, 20 invitations a
day, no latency), one syncing with history, one with its history writes switched off (the same
code, history.history_writes), `--days` nights each, and keeps each folder as its last night's
sync stands just before it publishes (history_patch.folder_before_last_publish). It then
publishes copies of both `--repeats` times, alternated, in one lane (publish.PUBLISH_LANES = 1:
the steps one after the other, none slowed by another) and prints per step the median seconds
with and without history and the difference: what history adds to each step, which the lanes
side by side of a real nightly blur (bench/history.py gives that nightly whole).

    uv run --frozen python bench/publish_steps.py [--days 25] [--test-takers 300] [--repeats 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from history import PHASES, history_writes  # noqa: E402  (bench/history.py: its steps timed, history on/off)
from history_patch import folder_before_last_publish  # noqa: E402  (bench/history_patch.py)
from publish_lanes import publish_copy  # noqa: E402  (bench/publish_lanes.py)
from targets import load_average  # noqa: E402  (bench/targets.py)

PUBLISH_STEPS = ("publish (whole)", "  fingerprints", "  gate", "  Parquet lane", "  history patches lane", "  copies lane")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--test-takers", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="jofi-publish-steps-") as tmp:
        kept = {}
        for on in (True, False):
            label = "with" if on else "without"
            print(f"  building {args.test_takers} test takers, {args.days} nights, {label} history ...", file=sys.stderr, flush=True)
            kept[on] = Path(tmp) / f"kept-{label}"
            with history_writes(on):
                folder_before_last_publish(Path(tmp) / f"data-{label}", kept[on], args.test_takers, args.days)
            shutil.rmtree(Path(tmp) / f"data-{label}")
        seconds: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
        for repeat in range(args.repeats):
            for on in ((True, False) if repeat % 2 else (False, True)):
                PHASES.take()
                with history_writes(on):  # off: history is not begun from the current rows on opening
                    publish_copy(kept[on], Path(tmp) / "scratch", 1)
                for step, spent in PHASES.take().items():
                    seconds[on].setdefault(step, []).append(spent)
            loads.append(load_average())
    print(f"\npublish steps bench: {args.test_takers} test takers, night {args.days}, {args.repeats} publishes of each, "
          "one lane (the steps one after the other)")
    print(f"{'step':<28} {'with':>8} {'without':>8} {'extra':>8}   (median seconds)")
    medians = {on: {step: statistics.median(seconds[on][step]) for step in PUBLISH_STEPS} for on in (True, False)}
    # The rest: the copy's and the file's checkpoints, the manifest, the flush to disk, the switch.
    rest = {on: medians[on][PUBLISH_STEPS[0]] - sum(medians[on][step] for step in PUBLISH_STEPS[1:]) for on in (True, False)}
    for step in PUBLISH_STEPS:
        print(f"{step:<28} {medians[True][step]:8.3f} {medians[False][step]:8.3f} {medians[True][step] - medians[False][step]:+8.3f}")
    print(f"{'  the rest':<28} {rest[True]:8.3f} {rest[False]:8.3f} {rest[True] - rest[False]:+8.3f}")
    print("load while measuring: " + "; ".join(dict.fromkeys(loads)))


if __name__ == "__main__":
    main()
