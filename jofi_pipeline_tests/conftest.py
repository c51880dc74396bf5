"""Shared fixtures: a running JOFI simulator (real HTTP, own process) for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jofi_pipeline.simulator.process import SimulatorProcess


def pytest_configure(config: pytest.Config) -> None:
    """Dagster runs made by tests go to a throwaway instance, never the project's .dagster_home/
    (nor a DAGSTER_HOME the developer exported); a test that needs its own sets its own."""
    home = Path(tempfile.mkdtemp(prefix="jofi-tests-dagster-home-"))
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config._jofi_dagster_home = home  # type: ignore[attr-defined]
    os.environ["DAGSTER_HOME"] = str(home)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = getattr(config, "_jofi_dagster_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def _session_simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture
def simulator(_session_simulator: SimulatorProcess) -> SimulatorProcess:
    """The session's default-world simulator, with faults cleared and stats reset for this test.

    The world itself is shared: a test that advances the clock or POSTs live data should use
    `make_simulator` (or call `simulator.reset()`).
    """
    _session_simulator.clear_faults()
    _session_simulator.reset_stats()
    return _session_simulator


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., SimulatorProcess]]:
    """Factory for simulators with their own options, e.g. `make_simulator(test_takers=50, seed=7)`."""
    started: list[SimulatorProcess] = []

    def make(**options: Any) -> SimulatorProcess:
        sim = SimulatorProcess(**options).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
