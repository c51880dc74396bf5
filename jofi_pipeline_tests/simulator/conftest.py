"""Helpers for the simulator's own tests: authenticated HTTP clients and shape checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from jofi_pipeline.simulator.process import SimulatorProcess

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.(\d{3}|\d{5}|\d{6})\+00:00$")
INT32_MAX = 2**31 - 1


def client(sim: SimulatorProcess, mode: str | None, header: str = "Authorization", timeout: float = 10.0) -> httpx.Client:
    headers = {}
    if mode is not None:
        headers[header] = f"Bearer {sim.live_key if mode == 'live' else sim.test_key}"
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=timeout)


@pytest.fixture
def live(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    with client(simulator, "live") as c:
        yield c


@pytest.fixture
def test_client(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    with client(simulator, "test") as c:
        yield c


@pytest.fixture(params=["live", "test"])
def mode_client(request, simulator: SimulatorProcess) -> Iterator[tuple[str, httpx.Client]]:
    with client(simulator, request.param) as c:
        yield request.param, c


def get_json(c: httpx.Client, path: str, status: int = 200, **kwargs) -> dict:
    response = c.get(path, **kwargs)
    assert response.status_code == status, (path, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()
