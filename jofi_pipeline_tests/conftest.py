"""Shared fixtures: a running JOFI simulator (real HTTP, own process) for end-to-end tests; and the
two test tiers.

`make test-fast` runs the unit and contract tests (`-m "not e2e"`): in this process, against an
`httpx.MockTransport` or an in-memory fake, a real DuckDB in a temp dir. A test is end-to-end (`e2e`,
`make test` only) when it starts a process or a real run: a simulator, the CLI zygote, a server,
a Dagster job. Tests that use one of PROCESS_FIXTURES are marked so here, whatever their folder;
a test that starts such things itself carries `@pytest.mark.e2e` (or its module `pytestmark`).
A test left unmarked that starts any process fails at once and says so.
"""

from __future__ import annotations

from jofi_pipeline_tests import heap

heap.pause_for_start_up()  # before the imports below and the Dagster, pyarrow, ... the tests load

import multiprocessing.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline_tests.simulator_pool import SimulatorPool


def _is_xdist_controller(config: pytest.Config) -> bool:
    """This process hands the tests to xdist workers and runs none itself (`-n 2`, not a worker)."""
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def pytest_configure(config: pytest.Config) -> None:
    """Dagster runs made by tests go to a throwaway instance, never the project's .dagster_home/
    (nor a DAGSTER_HOME the developer exported); a test that needs its own sets its own.

    Each process that runs tests makes its own. xdist's controller runs none, so it neither makes
    one nor imports Dagster (~2 s before any worker starts): its workers start after it has
    configured."""
    if _is_xdist_controller(config):
        heap.start_up_loaded()  # it collects no tests
        return
    from jofi_pipeline.dagster_compute_logs import compute_logs_config
    from jofi_pipeline.dagster_storage import storage_config

    home = Path(tempfile.mkdtemp(prefix="jofi-tests-dagster-home-"))
    # The project's storage (kept SQLite connections) and compute logs, as the project's dagster.yaml has them.
    instance_config = {**storage_config(str(home)), **compute_logs_config(str(home / "storage")), "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config))
    config._jofi_dagster_home = home  # type: ignore[attr-defined]
    os.environ["DAGSTER_HOME"] = str(home)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = getattr(config, "_jofi_dagster_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


# Fixtures that start a process (directly or through the fixtures they use).
PROCESS_FIXTURES = frozenset({
    "_session_simulator", "simulator_pool", "make_simulator", "small_sim", "small_world", "zygote", "postgres", "s3",
})


# The files whose tests run for minutes (measured with --durations), longest first. `make test`
# hands whole files to its workers in collection order; started last, the kill -9 trials alone
# kept one worker busy for ten minutes after the others had finished.
LONG_FILES = (
    "reliability/test_crash_safety.py",
    "reliability/test_concurrency.py",
    "deploy/test_production.py",
    "reliability/test_doors.py",
    "dagster/test_backfill_ui.py",
    "webhooks/test_completeness.py",
    "reliability/test_isolation.py",
    "cli/test_readme_commands.py",
)


# Files whose tests `make test` hands out one by one rather than as one file, so several workers
# share the file. test_crash_safety.py: its 20 kill -9 trials are one test that runs for minutes
# (the only one of the file on the zygote); as one unit with its six publish-step tests, the worker
# that ran it would also hold the fifth long file from the start (xdist hands each worker two units),
# minutes of waiting behind it. Not test_doors.py: its tests run for seconds, and each worker that ran one
# of them started its own zygote and leased its own simulator.
SPREAD_FILES = (
    "reliability/test_crash_safety.py",
)


def _rel_path(nodeid: str) -> str:
    return nodeid.split("::")[0].removeprefix("jofi_pipeline_tests/")


def _long_first(item: pytest.Item) -> int:
    path = _rel_path(item.nodeid)
    return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, except that each test of SPREAD_FILES is a work unit of its own, and the
    units go out in collection order (longest files first, see LONG_FILES), not xdist's default
    reordering by number of tests per file, which handed out the minutes-long files last."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFirstFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if _rel_path(nodeid) in SPREAD_FILES else super()._split_scope(nodeid)

        def schedule(self) -> None:
            self.config.option.loadscopereorder = False
            super().schedule()

    return LongFirstFileScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    heap.start_up_loaded()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=_long_first)  # stable: the order within a file and among the rest is kept


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the fast tier fast: an unmarked test that starts a process (a simulator, the CLI, a
    reader in another interpreter, a Dagster run in a child) is in the wrong tier and says so."""
    if request.node.get_closest_marker("e2e") is not None:
        return

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(
                f"{request.node.nodeid} starts {what}: mark it @pytest.mark.e2e "
                "(it then runs in `make test`, not `make test-fast`)"
            )
        return refused

    monkeypatch.setattr(SimulatorProcess, "start", refuse("a simulator process"))
    # Every subprocess (subprocess, asyncio, multiprocessing's spawn) goes through one of these.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse("a subprocess"))
    monkeypatch.setattr(os, "fork", refuse("a forked process"))
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", refuse("a spawned process"))


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


@pytest.fixture(scope="session")
def simulator_pool() -> Iterator[SimulatorPool]:
    """Simulators kept between tests of this process, handed out again as new (simulator_pool.py)."""
    pool = SimulatorPool()
    yield pool
    pool.close()


@pytest.fixture
def make_simulator(simulator_pool: SimulatorPool) -> Iterator[Callable[..., SimulatorProcess]]:
    """Factory for simulators with their own options, e.g. `make_simulator(test_takers=50, seed=7)`:
    each as a new process with those options serves it (a kept one, reset: simulator_pool.py)."""
    leased: list[tuple[SimulatorProcess, tuple]] = []

    def make(**options: Any) -> SimulatorProcess:
        leased.append(simulator_pool.take(**options))
        return leased[-1][0]

    yield make
    for sim, fresh in leased:
        simulator_pool.give_back(sim, fresh)


@pytest.fixture(autouse=True)
def _registry_left_as_found() -> Iterator[None]:
    """A test may patch the table registry, but must leave it in its order: Dagster is handed the
    assets in that order and refuses a history table yielded before its table (a table deleted and
    restored by monkeypatch comes back last, and broke a later test in another room)."""
    from jofi_pipeline.warehouse.tables import TABLES

    before = list(TABLES)
    yield
    assert list(TABLES) == before, "this test left the table registry reordered or changed"
