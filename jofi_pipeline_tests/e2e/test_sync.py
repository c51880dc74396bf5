"""End-to-end: a real simulator over HTTP, real DuckDB and Parquet files, the real sync."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from jofi_pipeline.settings import ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.api import ApiKeyError
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline.warehouse.store import RunWriter
from jofi_pipeline_tests.e2e.helpers import LISTED, ids, published, sync, tree_digest, truth_ids
from jofi_pipeline_tests.folder_copies import copy_of, named_for


@pytest.fixture
def keys(monkeypatch):
    """Put a simulator's keys where the sync reads them (env vars), like a customer would."""

    def use(sim):
        monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
        monkeypatch.setenv(ENV_TEST_KEY, sim.test_key)
        return sim

    return use


# The world of the tests whose subject is the run after a first sync of it.
SYNCED_WORLD = {"test_takers": 20, "seed": 3}


def synced_once(make_simulator, keys, into):
    """A simulator of SYNCED_WORLD and `into` as a copy of a folder synced once from it in this
    process: the first sync is not these tests' subject. The simulator pool hands the same process
    back, reset to its first day, to the next test asking for this world (folder_copies.named_for)."""
    sim = keys(make_simulator(**SYNCED_WORLD))
    copy_of(named_for("e2e-synced", sim), lambda data: sync(sim, "live", data), into)
    return sim


def completed(test_taker: dict) -> int:
    return sum(1 for a in test_taker.get("assigned_assessments") or [] if a.get("completed_at"))


@pytest.mark.parametrize("mode", ["live", "test"])
def test_full_sync_equals_the_simulated_world(make_simulator, keys, tmp_path, mode):
    """With cursor paging every record is reachable, so the warehouse must equal the world."""
    sim = keys(make_simulator(test_takers=30, seed=11, pagination="cursor"))
    report = sync(sim, mode, tmp_path)
    truth = sim.truth(mode)

    assert report.status == "succeeded"
    with published(tmp_path, mode) as con:
        for entity in LISTED:
            assert ids(con, entity) == truth_ids(truth, entity), entity
        assert con.execute("SELECT id, display_name FROM account").fetchall() == [
            (truth["account"]["id"], truth["account"]["display_name"])
        ]
        # Sampled values: every test taker's name, profile and completions as the API has them.
        held = {
            row[0]: row[1:]
            for row in con.execute(
                "SELECT t.id, t.email, t.career_navigation_profile_id, "
                "count(a.completed_at) FROM test_takers t LEFT JOIN test_taker_assessments a ON a.test_taker_id = t.id "
                "GROUP BY ALL"
            ).fetchall()
        }
        for tt in truth["test_takers"]:
            assert held[tt["id"]] == (tt["email"], tt.get("career_navigation_profile_id"), completed(tt)), tt["id"]

        profiles = [sp["short_name"] for sp in truth["score_profiles"]]
        scored = [tt for tt in truth["test_takers"] if completed(tt)]
        assert con.execute("SELECT count(*) FROM scorecards").fetchone()[0] == len(scored) * len(profiles)
        with_profile = [tt for tt in truth["test_takers"] if tt.get("career_navigation_profile_id")]
        assert con.execute("SELECT count(*) FROM job_fit_reports").fetchone()[0] == len(with_profile)
        assert con.execute("SELECT count(*) FROM scorecard_scores").fetchone()[0] > 0

        # Mode isolation: every row of every table carries this mode and nothing else.
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            modes = {m for (m,) in con.execute(f'SELECT DISTINCT _mode FROM "{table}"').fetchall()}
            assert modes <= {mode}, table
        # Parquet holds the same tables with the same row counts.
        for table in ("invitations", "test_takers", "scorecard_scores"):
            files = list((tmp_path / mode / "parquet" / table).glob("*.parquet"))
            rows = sum(pq.read_metadata(f).num_rows for f in files)
            assert rows == con.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table
    other = "test" if mode == "live" else "live"
    assert not (tmp_path / other).exists(), "a sync of one mode must not touch the other's storage"


def test_capped_lists_accumulate_and_open_records_are_refreshed_by_id(make_simulator, keys, tmp_path):
    sim = keys(make_simulator(test_takers=80, seed=5))
    sync(sim, "live", tmp_path)
    with published(tmp_path, "live") as con:
        first = {t: ids(con, t) for t in ("invitations", "test_takers", "career_navigation_profiles")}
        coverage = dict(con.execute("SELECT entity, api_total_count - rows_held FROM sync_coverage").fetchall())
    truth = sim.truth("live")
    # Coverage says exactly how many records the windows hid from us.
    for entity in first:
        assert coverage[entity] == len(truth_ids(truth, entity)) - len(first[entity]), entity
    assert coverage["invitations"] > 0, "the world should be larger than the invitations window"

    summary = sim.advance(3)
    assert summary, "advancing the clock should create activity"
    report = sync(sim, "live", tmp_path)
    truth = sim.truth("live")
    with published(tmp_path, "live") as con:
        for entity, before in first.items():
            now = ids(con, entity)
            assert before <= now, f"{entity}: records that left the window were dropped"
            assert len(now) > len(before), f"{entity}: no new records after 3 days of activity"
        # Every invitation we hold agrees with the API's current state (refreshed by id if it
        # left the window while open), and nothing is duplicated.
        by_id = {i["id"]: i for i in truth["invitations"]}
        rows = con.execute("SELECT id, test_taker_id, career_navigation_profile_id FROM invitations").fetchall()
        assert len(rows) == len({r[0] for r in rows})
        for inv_id, tt_id, cnp_id in rows:
            assert (tt_id, cnp_id) == (by_id[inv_id].get("test_taker_id"), by_id[inv_id].get("career_navigation_profile_id"))
        tts = {t["id"]: t for t in truth["test_takers"]}
        for tt_id, done in con.execute(
            "SELECT test_taker_id, count(completed_at) FROM test_taker_assessments GROUP BY ALL"
        ).fetchall():
            assert done == completed(tts[tt_id]), tt_id
        updated_any = con.execute(
            "SELECT count(*) FROM invitations WHERE _first_synced_at < _last_synced_at"
        ).fetchone()[0]
        assert updated_any > 0
    assert report.updated.get("invitations", 0) + report.updated.get("test_takers", 0) > 0


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """All rows of all data tables (the run log aside), every column included."""
    snap = {}
    for (table,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name NOT IN ('sync_runs', 'sync_coverage')"
    ).fetchall():
        snap[table] = sorted(map(repr, con.execute(f'SELECT * FROM "{table}"').fetchall()))
    return snap


def _parquet_inodes(data_dir) -> dict[str, int]:
    """Each published table's Parquet file, by inode: a table carried over is a hard link of the last one."""
    return {path.parent.name: path.stat().st_ino for path in (data_dir / "live" / "parquet").glob("*/*.parquet")}


def test_second_sync_without_activity_changes_nothing_but_the_run_log(make_simulator, keys, tmp_path):
    tmp_path = tmp_path / "data"
    sim = synced_once(make_simulator, keys, tmp_path)
    inodes = _parquet_inodes(tmp_path)
    with published(tmp_path, "live") as con:
        before = _snapshot(con)
    report = sync(sim, "live", tmp_path)
    with published(tmp_path, "live") as con:
        # Every row as it was, `_last_synced_at` included: re-reading a record that did not change writes nothing.
        assert _snapshot(con) == before
        assert con.execute("SELECT count(*) FROM sync_runs WHERE status = 'succeeded'").fetchone()[0] == 2
    # Only the run log grows: this run's row and one coverage row per list read.
    assert report.inserted == {"sync_runs": 1, "sync_coverage": len(report.coverage)}
    assert report.updated == {}
    # So the publish rewrote only the run log's two tables; every other Parquet file is carried over.
    rewritten = {table for table, inode in _parquet_inodes(tmp_path).items() if inodes.get(table) != inode}
    assert rewritten == {"sync_runs", "sync_coverage"}


def test_a_sync_that_fails_midway_leaves_the_published_warehouse_untouched(make_simulator, keys, tmp_path, monkeypatch):
    tmp_path = tmp_path / "data"
    sim = synced_once(make_simulator, keys, tmp_path)
    before = tree_digest(tmp_path / "live")
    sim.advance(2)

    real_upsert = RunWriter.upsert

    def failing_upsert(self, entity, objects, synced_at, **fetch_state):
        if entity == "scorecards":
            raise OSError("disk full (injected)")
        return real_upsert(self, entity, objects, synced_at, **fetch_state)

    monkeypatch.setattr(RunWriter, "upsert", failing_upsert)
    with pytest.raises(SyncFailed, match="OSError: disk full [(]injected[)]"):  # one line, the cause kept
        sync(sim, "live", tmp_path)
    assert tree_digest(tmp_path / "live") == before

    monkeypatch.setattr(RunWriter, "upsert", real_upsert)
    report = sync(sim, "live", tmp_path)  # the next run picks up cleanly
    assert report.status == "succeeded"
    with published(tmp_path, "live") as con:
        statuses = [s for (s,) in con.execute("SELECT status FROM sync_runs ORDER BY started_at").fetchall()]
        assert statuses == ["succeeded", "failed", "succeeded"]
        assert ids(con, "invitations") <= truth_ids(sim.truth("live"), "invitations")
    # The failed run never committed a scorecard, so nothing records them as fetched: the recovery
    # run fetches and stores the ones the new activity changed.
    assert report.inserted.get("scorecards", 0) + report.updated.get("scorecards", 0) > 0


def test_an_open_reader_survives_a_sync(make_simulator, keys, tmp_path):
    tmp_path = tmp_path / "data"
    sim = synced_once(make_simulator, keys, tmp_path)
    reader = published(tmp_path, "live")
    held_before = reader.execute("SELECT count(*) FROM invitations").fetchone()[0]
    sim.advance(3)
    sync(sim, "live", tmp_path)
    # The reader keeps its consistent snapshot; a new connection sees the new run.
    assert reader.execute("SELECT count(*) FROM invitations").fetchone()[0] == held_before
    reader.close()
    with published(tmp_path, "live") as con:
        assert con.execute("SELECT count(*) FROM invitations").fetchone()[0] > held_before


def test_a_key_for_the_wrong_mode_is_refused_before_any_request(simulator, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_LIVE_KEY, simulator.test_key)
    simulator.reset_stats()
    with pytest.raises(ApiKeyError) as failure:  # building the live client, before the sync starts
        sync(simulator, "live", tmp_path)
    assert "JOFI_LIVE_API_KEY" in str(failure.value) and failure.value.fatal
    assert simulator.test_key not in str(failure.value) and simulator.test_key not in repr(failure.value)
    assert simulator.stats()["total"] == 0
    assert not any(tmp_path.iterdir())


def test_a_sync_waits_for_the_other_writer_of_its_mode_when_asked_to(simulator, keys, tmp_path):
    """Dagster runs wait (writer_wait_seconds) instead of failing a nightly behind a sensor run."""
    import threading
    import time
    from datetime import datetime, timezone

    from jofi_pipeline.warehouse import WarehouseStore

    keys(simulator)
    holder = WarehouseStore(tmp_path, "test").open_run("holder", datetime.now(timezone.utc))
    with pytest.raises(SyncFailed, match="being written by another sync"):
        sync(simulator, "test", tmp_path)  # the CLI's default: fail at once, clearly

    release = threading.Timer(2.0, holder.close)
    release.start()
    started = time.monotonic()
    report = sync(simulator, "test", tmp_path, writer_wait_seconds=30)
    assert report.status == "succeeded"
    assert time.monotonic() - started >= 1.9
    release.join()


def test_a_few_failing_records_publish_as_partial_and_are_asked_for_again(make_simulator, keys, tmp_path, monkeypatch):
    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.api.errors import ServerError

    sim = keys(make_simulator(test_takers=20, seed=12))
    real_get = JofiClient.get
    broken: list[int] = []

    async def get(self, entity, key=None):
        if entity == "scorecards":
            test_taker_id = key[0]
            if not broken:
                broken.append(test_taker_id)  # the first test taker asked for: JOFI always fails it
            if test_taker_id == broken[0]:
                raise ServerError("GET /test-takers/{id}/scorecard: 500 (injected)", status=500, route="scorecard")
        return await real_get(self, entity, key)

    monkeypatch.setattr(JofiClient, "get", get)
    report = sync(sim, "live", tmp_path)
    assert report.status == "partial"
    assert report.fetch_failures["scorecards"] == 4  # one test taker x 4 score profiles
    assert str(broken[0]) in report.error
    with published(tmp_path, "live") as con:  # published anyway: one record must not block every night
        assert con.execute("SELECT status FROM sync_runs").fetchall() == [("partial",)]
        assert con.execute("SELECT count(*) FROM scorecards WHERE test_taker_id = ?", broken).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM scorecards").fetchone()[0] > 0

    monkeypatch.setattr(JofiClient, "get", real_get)
    sim.reset_stats()
    report = sync(sim, "live", tmp_path)
    assert report.status == "succeeded"
    assert sim.stats()["routes"]["GET /test-takers/{id}/scorecard"]["total"] == 4  # only the failed ones
    with published(tmp_path, "live") as con:
        assert con.execute("SELECT count(*) FROM scorecards WHERE test_taker_id = ?", broken).fetchone()[0] == 4


def test_failures_on_many_records_look_systemic_and_publish_nothing(make_simulator, keys, tmp_path, monkeypatch):
    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.api.errors import ServerError

    sim = keys(make_simulator(test_takers=20, seed=12))

    real_get = JofiClient.get

    async def get(self, entity, key=None):
        if entity == "scorecards":
            raise ServerError("GET /test-takers/{id}/scorecard: 500 (injected)", status=500, route="scorecard")
        return await real_get(self, entity, key)

    monkeypatch.setattr(JofiClient, "get", get)
    with pytest.raises(SyncFailed, match="looks like an API problem"):
        sync(sim, "live", tmp_path)
    assert not (tmp_path / "live" / "jofi.duckdb").exists()


def test_a_sync_whose_merges_lag_its_answers_merges_its_short_batches_together_and_keeps_every_record(
        make_simulator, keys, tmp_path, monkeypatch):
    """At concurrency 64 the answers come faster than they merge: a fan-out's short last batches,
    cut while a merge runs, join the batch still waiting (by_id.PipelinedWrites) and merge once.
    The warehouse still holds each scorecard and job-fit report once, as the API has them."""
    import time
    from collections import Counter

    from jofi_pipeline.sync import by_id
    from jofi_pipeline_tests.warehouse.conftest import spy

    sim = keys(make_simulator(test_takers=60, seed=11, pagination="cursor"))
    cut, merged = Counter(), Counter()
    spy(monkeypatch, by_id.FanOut, "_writer_of", lambda self, entity, batch: cut.update([entity]))

    def slow_first(self, entity, objects, *args, **kwargs):
        merged.update([entity])
        if entity == "scorecards" and merged[entity] == 1:
            time.sleep(0.5)  # the first scorecards merge lags: the batches cut meanwhile wait

    spy(monkeypatch, RunWriter, "upsert", slow_first)
    monkeypatch.setattr(by_id, "TAIL_BATCH_MIN", 5)
    report = sync(sim, "live", tmp_path, max_concurrency=64, batch_size=100)
    assert report.status == "succeeded"
    assert merged["scorecards"] < cut["scorecards"], (merged, cut)
    truth = sim.truth("live")
    profiles = [sp["short_name"] for sp in truth["score_profiles"]]
    scored = [tt for tt in truth["test_takers"] if completed(tt)]
    with published(tmp_path, "live") as con:
        assert con.execute("SELECT count(*), count(DISTINCT (test_taker_id, score_profile_short_name)) FROM scorecards"
                           ).fetchone() == (len(scored) * len(profiles),) * 2
        with_profile = {tt["id"] for tt in truth["test_takers"] if tt.get("career_navigation_profile_id")}
        assert {r[0] for r in con.execute("SELECT test_taker_id FROM job_fit_reports").fetchall()} == with_profile
        fetched = con.execute("SELECT kind, count(*) FROM fetch_state GROUP BY kind").fetchall()
    assert dict(fetched).get("scorecard") == len(scored) * len(profiles), fetched
