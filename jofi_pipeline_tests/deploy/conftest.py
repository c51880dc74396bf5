"""Fixtures of the deploy suite: one PostgreSQL and one S3 server per session, started here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline_tests.deploy.services import S3, Postgres

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    server = S3()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def aws_env(s3: S3, monkeypatch) -> S3:
    """The standard AWS variables pointing at the test S3 server, for code running in this process."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3


@pytest.fixture(scope="session")
def small_world() -> Iterator[SimulatorProcess]:
    """A small account in both modes: these tests are about deploying and publishing, not syncing."""
    with SimulatorProcess(test_takers=10, test_world_test_takers=10, seed=15) as sim:
        yield sim


@pytest.fixture
def sim(small_world: SimulatorProcess, monkeypatch) -> SimulatorProcess:
    """The small world with its keys in the environment, as an operator would set them."""
    small_world.clear_faults()
    small_world.reset_stats()
    for name, value in small_world.env().items():
        monkeypatch.setenv(name, value)
    return small_world
