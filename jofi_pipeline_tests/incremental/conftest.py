"""Fixtures of the incremental tests: a simulator whose keys are where the sync reads them."""

from __future__ import annotations

import pytest

from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY


@pytest.fixture
def world(make_simulator, monkeypatch, tmp_path):
    """A fresh simulator (cursor paging, so every record is reachable and truth comparisons are
    exact) with its keys and URL in the env vars the sync and the Dagster resource read."""

    def start(**options):
        options = {"test_takers": 60, "seed": 21, "pagination": "cursor", **options}
        sim = make_simulator(**options)
        monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
        monkeypatch.setenv(ENV_TEST_KEY, sim.test_key)
        monkeypatch.setenv(ENV_BASE_URL, sim.base_url)
        monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
        return sim

    return start
