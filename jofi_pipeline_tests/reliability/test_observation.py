"""The shared observation of a published warehouse (jofi_pipeline/harness): a state it already
found whole is not read again, anything else is, and the records a crash trial counts come from
one open of the published file."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from jofi_pipeline import entities
from jofi_pipeline.harness import published_state, truth
from jofi_pipeline.warehouse import PublishedWarehouse
from jofi_pipeline_tests.warehouse.test_publish import filled


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The folders whose published database the observation opened to check."""
    opened: list[str] = []

    class DuckDB:  # the module, as the observation sees it, with its opens recorded
        def __getattr__(self, name):
            return getattr(duckdb, name)

        @staticmethod
        def connect(path, *args, **kwargs):
            opened.append(Path(path).parent.parent.name)
            return duckdb.connect(path, *args, **kwargs)

    monkeypatch.setattr(published_state, "duckdb", DuckDB())
    monkeypatch.setattr(published_state, "_observed", {}, raising=False)  # what other tests observed
    return opened


def test_a_state_observed_whole_is_not_read_again_and_any_other_is(tmp_path, checks):
    store = filled(tmp_path / "one", published=True)
    first = published_state.observe(store.mode_dir)
    shutil.copytree(tmp_path / "one", tmp_path / "copy", symlinks=True)  # the same bytes elsewhere
    assert published_state.observe(tmp_path / "copy" / "live") == first
    assert published_state.observe(store.mode_dir) == first
    assert checks == ["one"]

    other = filled(tmp_path / "two", n_teams=2, published=True)
    assert published_state.observe(other.mode_dir) != first
    assert checks == ["one", "two"]


def test_a_state_that_failed_a_check_is_checked_again(tmp_path, checks, monkeypatch):
    store = filled(tmp_path / "one", published=True)
    real = published_state.assert_no_duplicate_keys
    monkeypatch.setattr(published_state, "assert_no_duplicate_keys", lambda con: pytest.fail("a duplicate key"))
    for _ in range(2):
        with pytest.raises(pytest.fail.Exception, match="a duplicate key"):
            published_state.observe(store.mode_dir)
    monkeypatch.setattr(published_state, "assert_no_duplicate_keys", real)
    assert published_state.observe(store.mode_dir) is not None
    assert checks == ["one", "one", "one"]


def test_records_lost_reads_every_entity_through_one_open_of_the_published_file(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    with PublishedWarehouse("live", store.data_dir).open() as reader:
        held = {e: [{"id": i} for (i,) in reader.sql(f'SELECT id FROM "{e}"').fetchall()] for e in entities.LISTS}
    assert held["teams"] and held["test_takers"]

    class Simulator:
        def truth(self, mode):
            return {**held, "teams": [*held["teams"], {"id": 99}]}  # one team the warehouse lacks

    opened = []
    real_open = PublishedWarehouse.open
    monkeypatch.setattr(PublishedWarehouse, "open", lambda self: opened.append(self.mode) or real_open(self))
    assert truth.records_lost(Simulator(), store.data_dir, "live") == 1
    assert opened == ["live"]
