"""Fixtures of the reliability suite: a small world, keys in the environment, one zygote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jofi_pipeline.settings import ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.harness.zygote import Zygote

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def small_sim(simulator_pool) -> Iterator[SimulatorProcess]:
    """A small world with cursor paging, so a correct sync equals the simulator's truth exactly;
    the module's tests share it (as a new process serves it: simulator_pool.py)."""
    with simulator_pool.lease(test_takers=15, seed=21, pagination="cursor") as sim:
        yield sim


@pytest.fixture
def sim(small_sim: SimulatorProcess, monkeypatch) -> SimulatorProcess:
    small_sim.clear_faults()
    small_sim.reset_stats()
    monkeypatch.setenv(ENV_LIVE_KEY, small_sim.live_key)
    monkeypatch.setenv(ENV_TEST_KEY, small_sim.test_key)
    return small_sim


@pytest.fixture(scope="session")
def zygote(tmp_path_factory) -> Iterator[Zygote]:
    z = Zygote(Path(tmp_path_factory.mktemp("zygote")))
    yield z
    z.close()


def cli_env(sim: SimulatorProcess, data_dir: Path, **overrides: str) -> dict[str, str]:
    return {**sim.env(), "JOFI_DATA_DIR": str(data_dir), **overrides}
