"""Publish steps bench: where a nightly publish's time goes, step by step, with history and without.

Builds two warehouses of one simulated world (history_patch.folder_before_last_publish's: seed
16, cursor paging, 20 invitations a day, no latency), one syncing with history, one with its
history writes switched off (the same code, history.history_writes), `--days` nights each, and
keeps each folder as its last night's sync stands just before it publishes. It then publishes
copies of both `--repeats` times, alternated, in one lane (publish.PUBLISH_LANES = 1: the steps
one after the other), each after its copy of the published file is staged and flushed as a
nightly has it before it publishes (RunWriter.stage_publish, begun as the run opens), and prints
per step the median seconds with and without history and the difference: what history adds to
each step, which the lanes side by side of a real nightly blur (bench/history.py gives that
nightly whole). "The rest" is, per publish, the whole less the steps listed (emptying, dropping
and creating the changed tables, links, views, the file's final checkpoint, the manifest, the
flush, the switch), then its median; a negative difference is noise.

Before each publish the history tables a nightly has settled by its last step (every versioned
table but the job-fit reports', runner.py) are patched into the staged copy, as the run does while
it still fetches (publish_ahead.py), and timed apart: "publish head start" is that work, done beside
the fetch, not in the publish. `--no-head-start` publishes without it, as before it existed.

Not counted: the work database's checkpoint beside the publish (checkpoint_beside.py) has nothing
to write here (the folders are kept checkpointed), though a nightly's holds the night's merges,
more with history.

    uv run --frozen python bench/publish_steps.py [--days 25] [--test-takers 300] [--repeats 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from history import PHASES, history_writes  # noqa: E402  (bench/history.py: its steps timed, history on/off)
from history_patch import folder_before_last_publish  # noqa: E402  (bench/history_patch.py)
from phase_times import STEPS  # noqa: E402  (bench/phase_times.py)
from targets import load_average  # noqa: E402  (bench/targets.py)
from jofi_pipeline.warehouse import WarehouseStore  # noqa: E402
from jofi_pipeline.warehouse import publish as publish_module  # noqa: E402
from jofi_pipeline.warehouse.tables import ENTITY_TABLES  # noqa: E402

# The publish and its steps, as bench/phase_times.py times them (the steps indented under it).
PUBLISH_STEPS = tuple(label for label, _, _ in STEPS if label == "publish (whole)" or label.startswith("  "))


# What a nightly has settled by the time it fetches its last step (runner.py: the job-fit reports).
SETTLED = tuple(name for name in ENTITY_TABLES if name != "job_fit_reports")
AHEAD_STEP = next(label for label, _, _ in STEPS if label.startswith("publish head start"))


def publish_steps(kept: Path, scratch: Path, head_start: bool = True) -> dict[str, float]:
    """Seconds per step of one publish of a copy of `kept`, in one lane, its copy staged first
    (and the settled history tables patched into it first, with `head_start`)."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(kept, scratch, symlinks=True)
    publish_module.PUBLISH_LANES = 1
    try:
        with WarehouseStore(scratch, "live").open_run("bench-publish-steps", datetime.now(UTC)) as run:
            run.stage_publish()
            run._staged.copied()  # as a nightly's is by the end of its fetch
            PHASES.take()
            if head_start:
                run.settled(SETTLED)
                run._ahead.finish()  # done beside the fetch in a nightly: timed apart from the publish
            run.publish()
            return PHASES.take()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--test-takers", type=int, default=300)
    parser.add_argument("--repeats", type=positive, default=7)
    parser.add_argument("--no-head-start", dest="head_start", action="store_false",
                        help="publish without patching the settled history tables into the copy first")
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
                with history_writes(on):  # off: history is not begun from the current rows on opening
                    spent = publish_steps(kept[on], Path(tmp) / "scratch", args.head_start)
                spent["  the rest"] = spent[PUBLISH_STEPS[0]] - sum(spent[step] for step in PUBLISH_STEPS[1:])
                for step, value in spent.items():
                    seconds[on].setdefault(step, []).append(value)
            loads.append(load_average())
    print(f"\npublish steps bench: {args.test_takers} test takers, night {args.days}, {args.repeats} publishes of each, "
          "one lane (the steps one after the other)")
    print(f"{'step':<28} {'with':>8} {'without':>8} {'extra':>8}   (median seconds)")
    for step in (*PUBLISH_STEPS, "  the rest", *((AHEAD_STEP,) if args.head_start else ())):
        with_, without = (statistics.median(seconds[on][step]) for on in (True, False))
        print(f"{step:<28} {with_:8.3f} {without:8.3f} {with_ - without:+8.3f}")
    print("load while measuring: " + "; ".join(dict.fromkeys(loads)))


if __name__ == "__main__":
    main()
