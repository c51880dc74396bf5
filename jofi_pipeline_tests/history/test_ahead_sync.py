"""Nightlies against the simulator with history patched into the publish's copy while they fetch
(publish_ahead.py): the published history, in DuckDB and in Parquet, is the work database's, row
for row, and the head start was really taken."""

from __future__ import annotations

import logging

import duckdb
import pytest

from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.warehouse.tables import HISTORY
from jofi_pipeline_tests.e2e.helpers import published, sync

NIGHTS = 3


@pytest.fixture
def sim(make_simulator, monkeypatch):
    sim = make_simulator(test_takers=30, seed=21, pagination="cursor", daily_invitations=6)
    monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
    return sim


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return sorted(map(repr, con.execute(sql).fetchall()))


def test_nightlies_publish_the_work_history_exactly_with_the_head_start_taken(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="jofi_pipeline.warehouse.publish")
    sync(sim, "live", tmp_path)
    for _ in range(NIGHTS):
        sim.advance(1)
        sync(sim, "live", tmp_path)
    # Nothing to warn of: under load, a batch still writing made DuckDB refuse the publish's
    # checkpoint of the work database, one warning a night, until the publish waited for it first.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    said = [r.getMessage() for r in caplog.records if "patched ahead" in r.getMessage()]
    assert len(said) == NIGHTS  # the first sync has no version to start from
    done = {name for line in said for name in line.split(": ", 1)[1].split(" done;")[0].split(", ") if name != "none"}
    # The first batch (settled after the test takers) has the rest of the fetch to run in; a later
    # one still waiting when the fetch ends is left to the publish, so it is not asked for here.
    assert {"invitations_history", "test_takers_history"} <= done, said
    work = tmp_path / "live" / "work" / "jofi_work.duckdb"
    with published(tmp_path, "live") as pub, duckdb.connect(str(work), read_only=True) as con:
        for spec in HISTORY.values():
            table = f"SELECT * FROM {spec.name}"
            expected = rows(con, table)
            assert rows(pub, table) == expected, spec.name
            assert rows(pub, f"SELECT * FROM '{tmp_path}/live/parquet/{spec.name}/part-0.parquet'") == expected, spec.name
    assert not list((tmp_path / "live").glob("published.*/.ahead")), "the head start's folder is published"
