"""kill -9 of the sync at seeded random instants: the published warehouse is always one run's
complete state, the next run completes, no key is ever duplicated, nothing is lost; the history
tables always hold clean chains that agree with the current tables, and no version the crashed
state published is missing after the next run (no version lost or duplicated)."""

from __future__ import annotations

import random
import shutil

import duckdb
import pytest

from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse.store import WarehouseStore
from jofi_pipeline_tests.reliability.conftest import cli_env
from jofi_pipeline.harness.crash import crash_trials
from jofi_pipeline_tests.reliability.helpers import observe
from jofi_pipeline_tests.reliability.synced_once import copy_into, synced_live  # noqa: F401  (a fixture)

TRIALS = 20  # the brief asks for >= 20; bench/chaos.py runs 200
SEED = 20240611


# 20 trials are about 41 CLI syncs in a row, each starting from the state the last one left: one
# test, so one zygote, one first sync and one verdict over all 20 (four tests of five trials spread
# over `make test`'s workers paid a zygote and a first sync in each).
# The suite-wide 300 s limit could stop it half way on a busy 2-core machine.
@pytest.mark.timeout(900)
def test_kill_9_at_random_points_never_leaves_a_mixed_warehouse(sim, zygote, tmp_path):
    env = cli_env(sim, tmp_path)
    trials, _ = crash_trials(zygote, sim, env, random.Random(SEED), TRIALS)
    problems = [(round(t.delay, 2), t.problem) for t in trials if not t.ok]
    assert not problems, problems
    assert sum(len(t.after.history) for t in trials) > 0, "the trials must have written history"
    killed = sum(t.killed for t in trials)
    assert killed >= TRIALS // 2, f"most trials must actually kill a running sync: {killed} of {TRIALS}"
    outcomes = [(t.killed, t.outcome) for t in trials]
    assert {t.outcome for t in trials} == {"before", "after"} or killed == TRIALS, outcomes


class Crash(BaseException):
    """Stands in for kill -9 at one step of publish (BaseException: no cleanup code catches it)."""


# remove_versions first runs in the background copy's thread, before the switch (publish_staging.py)
STEPS = ["remove_versions", "fsync_tree", "swap_symlink", "ensure_fixed_links", "prune_versions"]


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_publish_step_leaves_one_whole_pair_and_heals(sim, tmp_path, monkeypatch, step, synced_live):
    """Deterministic companion of the random kills: stop publish right before each of its steps."""
    from jofi_pipeline_tests.e2e.helpers import sync

    copy_into(synced_live, tmp_path)  # a first run behind it: the subject is the next one
    before = observe(tmp_path / "live")
    sim.advance(1)

    def crash(*args, **kwargs):
        raise Crash(step)

    original = getattr(publish_module, step)
    monkeypatch.setattr(publish_module, step, crash)
    with pytest.raises(Crash):
        sync(sim, "live", tmp_path)
    monkeypatch.setattr(publish_module, step, original)
    crashed = observe(tmp_path / "live")  # whole pair, unique keys, whatever the step
    if step in ("remove_versions", "fsync_tree", "swap_symlink"):
        assert crashed == before, "before the switch nothing is visible"
    else:
        assert crashed.run_ids - before.run_ids, "after the switch the new pair is visible"
    sync(sim, "live", tmp_path)
    healed = observe(tmp_path / "live")
    assert (tmp_path / "live" / "jofi.duckdb").is_symlink() and (tmp_path / "live" / "parquet").is_symlink()
    assert healed.run_ids > crashed.run_ids


def test_the_two_rename_layout_is_converted_and_a_half_swapped_pair_is_detected(sim, tmp_path, synced_live):
    """The old publish (DuckDB file replaced, then the Parquet link) could be killed in between;
    the suite's pair check catches that state, and a publish converts the old layout."""
    from jofi_pipeline_tests.e2e.helpers import sync

    copy_into(synced_live, tmp_path)  # one run published
    mode_dir = tmp_path / "live"
    old_parquet = mode_dir / "parquet.old"
    (mode_dir / "parquet").resolve().rename(old_parquet)
    db_bytes = (mode_dir / "jofi.duckdb").resolve().read_bytes()
    for link in ("jofi.duckdb", "parquet", "current"):
        (mode_dir / link).unlink()
    (mode_dir / "parquet").symlink_to("parquet.old")
    (mode_dir / "jofi.duckdb").write_bytes(db_bytes)
    observe(mode_dir)  # a whole old-layout pair passes
    shutil.copytree(old_parquet, tmp_path / "old-parquet-copy")

    sim.advance(1)
    sync(sim, "live", tmp_path)
    new_db = (mode_dir / "jofi.duckdb").resolve().read_bytes()
    (mode_dir / "jofi.duckdb").unlink()
    (mode_dir / "jofi.duckdb").write_bytes(new_db)
    (mode_dir / "parquet").unlink()
    shutil.copytree(tmp_path / "old-parquet-copy", old_parquet)
    (mode_dir / "parquet").symlink_to("parquet.old")  # as if killed between the two renames
    with pytest.raises(AssertionError, match="half done"):
        observe(mode_dir)
    sync(sim, "live", tmp_path)
    assert observe(mode_dir) is not None
    assert not old_parquet.exists(), "old-layout versions are pruned"
    with duckdb.connect(str(WarehouseStore(tmp_path, "live").published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 3
