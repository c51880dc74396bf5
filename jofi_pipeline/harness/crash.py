"""One kill -9 trial: start `jofi-pipeline sync --mode live`, kill it at a seeded random instant,
check the published warehouse is exactly the state before or after a run, then let the next run
complete. Shared by the test suite and bench/chaos.py."""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from jofi_pipeline.harness.published_state import observe
from jofi_pipeline.harness.truth import records_lost as truth_records_lost
from jofi_pipeline.harness.zygote import Zygote

SYNC = ["sync", "--mode", "live"]


@dataclass
class Trial:
    delay: float
    killed: bool  # False when the run finished before the kill landed
    outcome: str  # "before" | "after": which complete state the crash left published
    ok: bool
    problem: str = ""
    records_lost: int = 0
    versions_lost: int = 0  # history versions the crashed state published that the next run dropped
    after: object = None  # the published state the next run left: the next trial's "before"
    run_seconds: float = 0.0  # how long the unkilled run after the crash took: the next trial's window


def timed_run(zygote: Zygote, env: dict[str, str]) -> float:
    started = time.monotonic()
    code, _, err = zygote.run(SYNC, env)
    if code != 0:
        raise AssertionError(f"an unkilled sync failed: {err[-800:]}")
    return time.monotonic() - started


def crash_trials(zygote: Zygote, sim, env: dict[str, str], rng: random.Random, count: int) -> tuple[list[Trial], float]:
    """`count` trials in a row, each starting from the state the last one left; also the first
    (unkilled) run's length. Each kill is drawn from the last unkilled run: a nightly is shorter
    than the first full sync, and the machine's load changes meanwhile (kills drawn from a stale
    window mostly land after the run ended and test nothing)."""
    duration = first = timed_run(zygote, env)
    trials: list[Trial] = []
    for _ in range(count):
        trials.append(crash_trial(zygote, sim, env, rng, duration, trials[-1].after if trials else None))
        duration = trials[-1].run_seconds or duration
    return trials, first


def crash_trial(zygote: Zygote, sim, env: dict[str, str], rng: random.Random, duration: float, before=None) -> Trial:
    mode_dir = Path(env["JOFI_DATA_DIR"]) / "live"
    sim.advance(1)  # new activity, so the killed run has something to change
    before = before or observe(mode_dir)
    # Half the kills anywhere in the run, half weighted to its end (fan-out tail, record, publish),
    # where the before/after boundary is: a uniform draw alone rarely lands there.
    if rng.random() < 0.5:
        delay = rng.uniform(0.0, duration * 1.1)
    else:
        delay = rng.uniform(duration * 0.75, duration * 1.05)
    pid, _, _ = zygote.start(SYNC, env)
    time.sleep(delay)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = zygote.wait(pid)
    killed = code == -signal.SIGKILL
    trial = Trial(delay=delay, killed=killed, outcome="?", ok=False)
    try:
        crashed = observe(mode_dir)  # checks: whole DuckDB/Parquet pair, unique keys
        started = time.monotonic()
        code, _, err = zygote.run(SYNC, env)
        trial.run_seconds = time.monotonic() - started
        if code != 0:
            trial.problem = f"the run after the crash failed: {err.strip().splitlines()[-1:]}"
            return trial
        after = trial.after = observe(mode_dir)
        assert after is not None and crashed is not None
        trial.records_lost = records_lost(sim, mode_dir)
        if crashed.digest == before.digest:
            trial.outcome = "before"
        elif crashed.data_digest == after.data_digest and crashed.run_ids - before.run_ids:
            trial.outcome = "after"
        else:
            trial.problem = "the published warehouse is neither the state before nor after a run"
            return trial
        if not crashed.run_ids <= after.run_ids:
            trial.problem = "the next run lost sync_runs history"
            return trial
        trial.versions_lost = len(crashed.history - after.history)
        if trial.versions_lost:
            trial.problem = f"{trial.versions_lost} history versions published before the crash are gone after the next run"
            return trial
        trial.ok = trial.records_lost == 0
        if not trial.ok:
            trial.problem = f"{trial.records_lost} records of the truth missing after the next run"
    except AssertionError as exc:
        trial.problem = str(exc).splitlines()[0]
    return trial


def records_lost(sim, mode_dir: Path) -> int:
    """Entity records the simulator holds that the published warehouse does not."""
    return truth_records_lost(sim, mode_dir.parent, mode_dir.name)
