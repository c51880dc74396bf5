"""Test takers' details asked for while the lists still page (sync/early_details.py), against the
simulator over HTTP: they really start before the test takers list is whole, each test taker is
asked once per run, the warehouse is the same as ever, and a run that fails meanwhile ends cleanly."""

from __future__ import annotations

import time
from collections import Counter

import duckdb
import pytest

from jofi_pipeline.api import JofiClient
from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline.sync.early_details import EarlyDetails
from jofi_pipeline_tests.e2e.helpers import published, sync

TEST_TAKERS = 250  # three pages of the test takers list at the client's page limit of 100


@pytest.fixture
def sim(make_simulator, monkeypatch):
    sim = make_simulator(test_takers=TEST_TAKERS, seed=5, pagination="cursor", latency_ms=20, daily_invitations=8)
    monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
    return sim


@pytest.fixture
def asked(monkeypatch) -> tuple[Counter, list]:
    """Each test taker's GETs by id this process sent, and (what, when) of the first one and of
    the moment the test takers list was whole."""
    counts: Counter = Counter()
    moments: list[tuple[str, float]] = []
    real_get, real_listed = JofiClient.get, EarlyDetails.listed

    async def get(self, entity, key=None):
        if entity == "test_takers":
            if not counts:
                moments.append(("first detail asked", time.perf_counter()))
            counts[key] += 1
        return await real_get(self, entity, key)

    def listed(self):
        moments.append(("list whole", time.perf_counter()))
        return real_listed(self)

    monkeypatch.setattr(JofiClient, "get", get)
    monkeypatch.setattr(EarlyDetails, "listed", listed)
    return counts, moments


def held_with_detail(data_dir) -> tuple[int, int]:
    with published(data_dir, "live") as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM test_takers), (SELECT count(DISTINCT test_taker_id) FROM test_taker_assessments)"
        ).fetchone()


def test_a_first_sync_asks_for_details_while_the_list_pages_and_each_test_taker_once(sim, tmp_path, asked):
    counts, moments = asked
    report = sync(sim, "live", tmp_path, max_concurrency=8)
    assert report.status == "succeeded"
    assert [what for what, _ in sorted(moments, key=lambda m: m[1])] == ["first detail asked", "list whole"]
    assert len(counts) == TEST_TAKERS and set(counts.values()) == {1}, counts.most_common(3)
    assert held_with_detail(tmp_path) == (TEST_TAKERS, TEST_TAKERS)


def test_a_nightly_asks_no_test_taker_twice_and_gets_every_new_ones_detail(sim, tmp_path, asked):
    counts, _ = asked
    sync(sim, "live", tmp_path)
    sim.advance(2)
    counts.clear()
    report = sync(sim, "live", tmp_path)
    assert report.status == "succeeded"
    assert counts and set(counts.values()) == {1}, counts.most_common(3)
    held, with_detail = held_with_detail(tmp_path)
    assert held > TEST_TAKERS and with_detail == held  # the day's new test takers, each with its assessments


def test_a_list_failing_while_details_are_asked_fails_the_run_and_the_next_one_publishes(sim, tmp_path, asked):
    """A revoked key on the invitations list's third page: the details in flight are cancelled,
    none merged, the run recorded failed and its lock let go; the next run publishes everything.
    Pages of 10: the test takers list (25 pages) is far from whole when the invitations list
    fails, so its details cannot merge yet (at 100 a page both lists end on their third page,
    and which one came first was a race)."""
    counts, moments = asked
    sim.set_faults(revoke_after_requests=2, routes=["/invitations"])
    with pytest.raises(SyncFailed, match="(?i)api key"):
        sync(sim, "live", tmp_path, max_concurrency=8, page_limit=10)
    assert counts, "no detail was asked before the list failed: the test shows nothing"
    assert "list whole" not in [what for what, _ in moments]  # its details could not merge yet
    assert not (tmp_path / "live" / "jofi.duckdb").exists()
    with duckdb.connect(str(tmp_path / "live" / "work" / "jofi_work.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM test_taker_assessments").fetchone() == (0,)
        assert con.execute("SELECT status FROM sync_runs").fetchall() == [("failed",)]
    sim.set_faults(revoke_after_requests=0, routes=[])
    assert sync(sim, "live", tmp_path).status == "succeeded"
    assert held_with_detail(tmp_path) == (TEST_TAKERS, TEST_TAKERS)


# Batch 20 after 60 answers: three batches wait for the list's merge (WriteGate), the fan-out
# waits behind them, and the refused key must still be what the run says.
@pytest.mark.parametrize(("batch_size", "answered"), [(2000, 3), (20, 60)])
def test_a_detail_refused_while_the_lists_page_stops_the_run_before_the_list_is_whole(
    sim, tmp_path, monkeypatch, batch_size, answered
):
    """A revoked key on the details: the run ends while the test takers list still pages (25
    pages of 10 here), not once every list is read, and the next run picks up cleanly."""
    pages: list[int] = []
    real_offer = EarlyDetails.offer
    monkeypatch.setattr(EarlyDetails, "offer", lambda self, items: (pages.append(len(items)), real_offer(self, items))[1])
    sim.set_faults(revoke_after_requests=answered, routes=["/test-takers/{id}"])
    with pytest.raises(SyncFailed, match="(?i)api key"):
        sync(sim, "live", tmp_path, max_concurrency=8, page_limit=10, batch_size=batch_size)
    assert 0 < len(pages) <= TEST_TAKERS // 10 // 2, pages  # it stopped within the first half of the list
    assert not (tmp_path / "live" / "jofi.duckdb").exists()
    sim.set_faults(revoke_after_requests=0, routes=[])
    assert sync(sim, "live", tmp_path).status == "succeeded"  # the lock was let go, the next run picks up
    assert held_with_detail(tmp_path) == (TEST_TAKERS, TEST_TAKERS)


def test_a_scorecard_refused_after_the_early_details_fails_the_run_and_the_next_one_publishes(sim, tmp_path):
    sim.set_faults(revoke_after_requests=20, routes=["/scorecard"])
    with pytest.raises(SyncFailed, match="(?i)api key"):
        sync(sim, "live", tmp_path, max_concurrency=8)
    assert not (tmp_path / "live" / "jofi.duckdb").exists()
    sim.set_faults(revoke_after_requests=0, routes=[])
    assert sync(sim, "live", tmp_path).status == "succeeded"


def test_a_refused_detail_ends_the_stream_at_once_while_no_more_pages_come(tmp_path):
    """The fan-out waits for the next page's ids; a fatal answer must not wait with it."""
    import asyncio
    from datetime import UTC, datetime

    from jofi_pipeline.api import AuthenticationError
    from jofi_pipeline.sync.by_id import FanOut
    from jofi_pipeline.sync.report import SyncReport
    from jofi_pipeline.warehouse import WarehouseStore
    from jofi_pipeline_tests.sync.fake_jofi import FakeJofi

    fake = FakeJofi()
    for test_taker_id in range(1, 6):
        fake.add_test_taker(test_taker_id)
    fake.fail["/test-takers/3"] = 401
    now = datetime(2026, 3, 1, tzinfo=UTC)

    async def go(writer):
        async with fake.client() as client:
            fan = FanOut(client, writer, SyncReport(run_id="r", mode="live", started_at=now), lambda line: None, 2000)
            early = EarlyDetails.begin(fan, [])
            early.go()
            # One page, fewer ids than the client's 4 slots: the fan-out then waits for more ids.
            early.offer([{"id": i} for i in range(1, 4)])  # the list never says it is whole
            with pytest.raises(AuthenticationError):
                await asyncio.wait_for(early.finish(), 5)
            await early.abandon()

    with WarehouseStore(tmp_path, "live").open_run("r", now) as writer:
        asyncio.run(go(writer))


@pytest.mark.parametrize("abandoned_by", ["abandon", "abandon_now"])
def test_once_abandoned_the_details_ask_for_nothing_whatever_a_late_list_read_says(tmp_path, abandoned_by):
    """A run closed by a second interrupt cancels its list reads without waiting for them: one may
    still end afterwards and call `go` (the score profiles whole). It must start no fan-out."""
    import asyncio
    from datetime import UTC, datetime

    from jofi_pipeline.sync.by_id import FanOut
    from jofi_pipeline.sync.report import SyncReport
    from jofi_pipeline.warehouse import WarehouseStore
    from jofi_pipeline_tests.sync.fake_jofi import FakeJofi

    fake = FakeJofi()
    for test_taker_id in range(1, 4):
        fake.add_test_taker(test_taker_id)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    gets: list[str] = []

    async def go(writer):
        async with fake.client() as client:
            real_get = client.get

            async def counted(entity, key=None):
                gets.append(entity)
                return await real_get(entity, key)

            client.get = counted
            fan = FanOut(client, writer, SyncReport(run_id="r", mode="live", started_at=now), lambda line: None, 2000)
            early = EarlyDetails.begin(fan, [])
            early.offer([{"id": i} for i in range(1, 4)])
            if abandoned_by == "abandon":
                await early.abandon()
            else:
                early.abandon_now()
            early.go()  # what a list read ending late does
            await asyncio.sleep(0.1)  # long enough for a fan-out begun to have asked
            asked = early.asked.tolist()
            await early.abandon()  # cancels whatever did begin
            return asked

    with WarehouseStore(tmp_path, "live").open_run("r", now) as writer:
        asked = asyncio.run(go(writer))
    assert gets == [] and asked == []
