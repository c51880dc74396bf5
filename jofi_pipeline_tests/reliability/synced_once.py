"""A live folder synced once per test module from the module's simulator, copied into each test
whose subject is a later run (a crash in the next publish, a fault in the next sync).

The first sync is not what those tests check, yet it was a full sync per test. The copy is
taken from the module's own simulator process, so the identity it records (account, API host
and port) is the one the test syncs against; within a module the simulator's world only moves
forward (tests advance it, none resets it), so the copy is an older state of the same world, as
a warehouse last synced a few days ago is."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jofi_pipeline.settings import ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.simulator.process import SimulatorProcess


@pytest.fixture(scope="module")
def synced_live(small_sim: SimulatorProcess, tmp_path_factory) -> Iterator[Path]:
    """A data folder holding one live sync of the module's simulator (in this process, no Dagster)."""
    from jofi_pipeline_tests.e2e.helpers import sync

    root = tmp_path_factory.mktemp("synced-live")
    # Set up before the test's own `sim` clears them: a fault an earlier test of the module left
    # (one that failed before clearing its own) would otherwise fail every later test in set-up.
    small_sim.clear_faults()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_LIVE_KEY, small_sim.live_key)
        patch.setenv(ENV_TEST_KEY, small_sim.test_key)
        assert sync(small_sim, "live", root).status == "succeeded"
    yield root


def copy_into(template: Path, data_dir: Path) -> Path:
    """`data_dir` (empty or missing) as a copy of `template`: links kept relative, mtimes kept."""
    shutil.copytree(template, data_dir, symlinks=True, dirs_exist_ok=True)
    return data_dir
