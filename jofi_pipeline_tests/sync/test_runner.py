"""run_sync handed a client for an in-memory JOFI and a store in a temp dir: the run's rules, fast.

The end-to-end tests (e2e/, incremental/) show the same against the simulator over real HTTP;
these pin each rule down in milliseconds and say exactly which requests a run sent.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jofi_pipeline import entities
from jofi_pipeline.sync import SyncFailed, SyncOptions, run_sync
from jofi_pipeline.sync.by_id import TAIL_BATCH_MIN
from jofi_pipeline.warehouse import TABLES, ModePaths, PublishedWarehouse, WarehouseStore
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.heap import nothing_frozen, only_new_objects_walked
from jofi_pipeline_tests.sync.conftest import held, run
from jofi_pipeline_tests.sync.fake_jofi import PROFILES, FakeJofi
from jofi_pipeline_tests.warehouse import docs_shapes as docs

TEST_TAKER = "/test-takers/{test_taker_id}"
INVITATION = "/invitations/{invitation_id}"
PROFILE = "/career-navigation-profiles/{career_navigation_profile_id}"
SCORECARD = "/test-takers/{test_taker_id}/scorecard"
JOB_FIT = "/test-takers/{test_taker_id}/job-fit-report"
LISTS = {"/users", "/teams", "/email-templates", "/assessments", "/score-profiles", "/invitations", "/test-takers",
         "/career-navigation-profiles"}


def by_id_counts(fake: FakeJofi) -> dict[str, int]:
    return {route: n for route, n in fake.counts.items() if route not in LISTS and route != "/accounts"}


def test_a_first_run_holds_every_record_and_asks_only_for_what_it_lacks(fake, store):
    report = run(fake, store)
    assert report.status == "succeeded" and report.mode == "live"
    assert held(store, "test_takers") == {101, 102, 103}
    assert held(store, "invitations") == {7, 100101, 100102, 100103}
    assert held(store, "career_navigation_profiles") == {"CNP101"}
    assert held(store, "scorecards", "test_taker_id || '/' || score_profile_short_name") == {
        f"{t}/{sp}" for t in (101, 102) for sp in PROFILES  # 103 has nothing completed: no scorecard
    }
    assert held(store, "job_fit_reports", "test_taker_id") == {101}  # the only one with a profile
    # Detail for every test taker (lists carry no assessments); every list once; nothing else.
    assert by_id_counts(fake) == {TEST_TAKER: 3, SCORECARD: 4, JOB_FIT: 1}
    assert {r for r in fake.counts if r in LISTS} == LISTS and all(fake.counts[r] == 1 for r in LISTS)
    assert report.requests_total == sum(fake.counts.values()) + 1  # + the healthcheck
    coverage = {c.entity: c for c in report.coverage}
    assert coverage["invitations"].api_total_count == 4 and coverage["invitations"].missing == 0


def test_an_unchanged_account_refetches_open_records_but_no_derived_object(fake, synced):
    report = run(fake, synced)
    assert by_id_counts(fake) == {TEST_TAKER: 3}  # all three still have an open assessment
    data = {name for name, spec in TABLES.items() if spec.kind in ("entity", "child")}
    assert not {t: n for t, n in report.inserted.items() if t in data and n}
    assert not {t: n for t, n in report.updated.items() if t in data and n}


def test_a_new_completion_refetches_only_that_test_takers_scorecards(fake, synced):
    fake.complete(102)
    report = run(fake, synced)
    assert by_id_counts(fake) == {TEST_TAKER: 3, SCORECARD: 2}
    assert report.updated.get("test_taker_assessments", 0) >= 1
    with PublishedWarehouse("live", synced.data_dir).open() as reader:
        reasons = reader.sql("SELECT test_taker_id, reason FROM fetch_state WHERE kind = 'scorecard' "
                             "AND reason = 'completions_changed'").fetchall()
    assert sorted(reasons) == [(102, "completions_changed")] * 2


def test_a_record_jofi_no_longer_has_is_marked_deleted_not_dropped(fake, synced):
    del fake.test_takers[103]
    run(fake, synced)
    with PublishedWarehouse("live", synced.data_dir).open() as reader:
        rows = dict(reader.sql("SELECT id, _deleted_at IS NOT NULL FROM test_takers").fetchall())
    assert rows == {101: False, 102: False, 103: True}


def test_a_few_failing_records_publish_as_partial_and_only_they_are_asked_again(fake, store):
    fake.fail["/test-takers/102/scorecard"] = 500
    report = run(fake, store)
    assert report.status == "partial" and report.fetch_failures == {"scorecards": 2}
    assert "2 of 4 scorecards" in report.error and "102" in report.error
    assert held(store, "scorecards", "test_taker_id") == {101}
    fake.fail.clear()
    fake.counts.clear()
    assert run(fake, store).status == "succeeded"
    assert by_id_counts(fake)[SCORECARD] == 2


def test_failures_on_many_records_publish_nothing(store):
    fake = FakeJofi(cap=50)
    for test_taker_id in range(1, 13):
        fake.add_test_taker(test_taker_id)
    fake.hook = lambda request: (
        httpx.Response(500, json={"error": {"type": "api_error", "message": "down"}})
        if request.url.path.endswith("/scorecard") else None
    )
    with pytest.raises(SyncFailed, match="looks like an API problem"):
        run(fake, store)
    assert not store.published_db_path.exists()


def test_an_unknown_score_profile_fails_before_any_by_id_request(fake, store):
    with pytest.raises(SyncFailed, match="score profile NOPE is not enabled.*JOFI-295-AS"):
        run(fake, store, score_profiles=("NOPE",))
    assert by_id_counts(fake) == {}
    assert not store.published_db_path.exists()


def test_a_backfill_of_one_profile_fetches_only_its_scorecards(fake, store):
    run(fake, store, score_profiles=("JOFI-112-CE",))
    assert held(store, "scorecards", "DISTINCT score_profile_short_name") == {"JOFI-112-CE"}


def test_a_store_of_the_other_mode_is_refused_before_any_request(fake, tmp_path):
    with pytest.raises(SyncFailed, match="live client into the test warehouse"):
        run(fake, WarehouseStore(tmp_path, "test"))
    assert not fake.counts and not list(tmp_path.iterdir())


def test_answers_for_the_other_mode_write_nothing(tmp_path):
    fake = FakeJofi(mode="test")  # answers `mode: "test"` to a live key, like a misrouted proxy

    async def go():
        async with fake.client(mode="live") as client:
            return await run_sync(client, WarehouseStore(tmp_path, "live"))

    with pytest.raises(SyncFailed, match="mode"):
        asyncio.run(go())
    assert not list(tmp_path.iterdir())


def test_ids_beyond_the_window_are_reported_then_fetched_from_the_inbox(store):
    fake = FakeJofi(cap=2)
    for test_taker_id in (101, 102, 103, 104, 105):
        fake.add_test_taker(test_taker_id)
    report = run(fake, store)
    assert held(store, "test_takers") == {104, 105}
    assert {c.entity: c.missing for c in report.coverage}["test_takers"] == 3
    with Inbox.open(ModePaths(store.data_dir, "live").inbox) as inbox:
        assert inbox.add_imported("test_takers", ["101", "102", "103"]) == (3, 0)
        with inbox.transaction() as con:  # a row an older version queued unchecked: skipped, not fatal
            con.execute("INSERT INTO pending_ids (entity, object_id, source, added_at) "
                        "VALUES ('test_takers', '../4', 'import', '2026-01-01T00:00:00Z')")
    fake.counts.clear()
    report = run(fake, store)
    assert held(store, "test_takers") == {101, 102, 103, 104, 105}
    assert {c.entity: c.missing for c in report.coverage}["test_takers"] == 0
    with Inbox.open(ModePaths(store.data_dir, "live").inbox, create=False) as inbox:
        assert inbox.counts() == {}, "applied once the run committed them"


def test_a_targeted_run_reads_no_list_and_fetches_exactly_its_records(fake, synced):
    fake.complete(101)
    report = run(fake, synced, targets={"test_takers": ["101"], "invitations": [7]})
    assert report.status == "succeeded"
    assert not any(route in LISTS for route in fake.counts)
    assert by_id_counts(fake) == {TEST_TAKER: 1, INVITATION: 1, SCORECARD: 2, JOB_FIT: 1}


def test_a_targeted_id_that_breaks_the_rule_is_never_sent_and_said_so(fake, store, caplog):
    report = run(fake, store, targets={"test_takers": ["../1", "101"]})
    assert report.status == "succeeded"
    assert by_id_counts(fake)[TEST_TAKER] == 1, "only 101 was asked for"
    assert "1 invalid test_takers id(s) skipped" in caplog.text and "'../1'" in caplog.text


def test_a_derived_answer_without_its_key_is_stored_under_the_key_it_was_asked_for(fake, store):
    def keyless(request: httpx.Request):
        if request.url.path.endswith("/101/scorecard"):
            body = docs.without(docs.scorecard(101, request.url.params["sp"]), "test_taker_id")
            body["score_profile"] = None
            return httpx.Response(200, json=body)
        return None

    fake.hook = keyless
    run(fake, store)
    assert held(store, "scorecards", "test_taker_id || '/' || score_profile_short_name") >= {
        f"101/{sp}" for sp in PROFILES
    }


def test_sync_options_carry_no_client_settings():
    assert set(SyncOptions.__dataclass_fields__) == {
        "batch_size", "full_refresh", "score_profiles", "writer_wait_seconds", "targets"
    }


def test_lists_longer_than_a_batch_are_merged_batch_by_batch_and_all_kept(fake, store, monkeypatch):
    """A list is merged in batch_size pieces (bounded memory on a 13,000-item list), losing nothing."""
    from jofi_pipeline.warehouse import RunWriter

    sizes: dict[str, list[int]] = {}
    real_upsert = RunWriter.upsert

    def counting_upsert(self, entity, objects, synced_at, **kwargs):
        objects = list(objects)
        sizes.setdefault(entity, []).append(len(objects))
        return real_upsert(self, entity, objects, synced_at, **kwargs)

    monkeypatch.setattr(RunWriter, "upsert", counting_upsert)
    report = run(fake, store, batch_size=2)
    assert report.status == "succeeded"
    assert held(store, "invitations") == {7, 100101, 100102, 100103}
    assert held(store, "test_takers") == {101, 102, 103}
    assert report.inserted["invitations"] == 4 and report.inserted["test_takers"] == 3
    assert max(n for calls in sizes.values() for n in calls) <= 2
    assert sizes["invitations"][:2] == [2, 2]  # the 4-item list, in two merges


def test_the_copy_a_publish_starts_from_is_staged_before_the_run_writes_and_dropped_if_it_fails(fake, synced, monkeypatch):
    """The copy of the current version overlaps the fetching (RunWriter.stage_publish as the run
    opens); a run that then fails leaves the mode folder exactly as it found it."""
    from jofi_pipeline.warehouse import RunWriter, publish_staging
    from jofi_pipeline_tests.warehouse.conftest import spy
    from jofi_pipeline_tests.warehouse.test_publish import published_state

    events: list[str] = []
    spy(monkeypatch, publish_staging.StagedVersion, "__init__", lambda self, targets, source: events.append("staged"))
    spy(monkeypatch, RunWriter, "upsert", lambda *args, **kwargs: events.append("upsert"))
    spy(monkeypatch, RunWriter, "publish", lambda self: events.append("publish"))
    fake.add_test_taker(104, completed=True)
    assert run(fake, synced).status == "succeeded"
    assert events[0] == "staged" and events.count("staged") == 1 and events[-1] == "publish"
    assert held(synced, "test_takers") == {101, 102, 103, 104}

    before = published_state(synced)
    fake.hook = lambda request: httpx.Response(500, json={"error": {"type": "api_error", "message": "down"}}) if (
        request.url.path.endswith("/test-takers")) else None  # after the writer opened and fetched some lists
    fake.add_test_taker(105, completed=True)
    with pytest.raises(SyncFailed, match="down"):
        run(fake, synced)
    assert published_state(synced) == before


def test_list_items_are_freed_once_merged_not_held_through_the_by_id_fetches(fake, store, monkeypatch):
    """The lists' items (~28,000 objects at 10,000 test takers) are merged, then let go: none is
    still alive when the by-id fetches start (they held the run's peak memory up to the end)."""
    import gc
    import weakref

    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.sync.by_id import FanOut

    class Item(dict):  # a list item, as the client returns it, that can be watched
        pass

    watched: list[weakref.ref] = []
    real_list, real_fetch = JofiClient.list, FanOut.fetch

    async def watched_list(self, entity, on_page=None):
        async def watched_page(page):
            items = [Item(item) for item in page]
            watched.extend(weakref.ref(item) for item in items)
            await on_page(items)

        return await real_list(self, entity, on_page=watched_page if on_page else None)

    alive_at_by_id: list[int] = []

    async def counting_fetch(self, *args, **kwargs):
        if not alive_at_by_id:  # counted as the first by-id fetch starts (a full collection each cost ~0.5 s)
            # The last list merge's future is done before the thread that ran it drops its work
            # item (whose arguments hold that page's items): give that thread a moment, up to a
            # second, while this fetch waits. Items the run really holds stay alive through it.
            for _ in range(100):
                gc.collect()
                if not any(ref() is not None for ref in watched):
                    break
                await asyncio.sleep(0.01)
            alive_at_by_id.append(sum(ref() is not None for ref in watched))
        return await real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(JofiClient, "list", watched_list)
    monkeypatch.setattr(FanOut, "fetch", counting_fetch)
    report = run(fake, store)
    assert report.status == "succeeded"
    assert len(watched) > 10 and held(store, "test_takers") == {101, 102, 103}
    assert alive_at_by_id and alive_at_by_id[0] == 0, f"{alive_at_by_id[0]} of {len(watched)} list items still alive"


def test_no_id_object_a_list_brought_is_held_once_its_items_are_merged(fake, store, monkeypatch):
    """The ids the run keeps from its lists (those in the window, the keys it wrote) are held as
    numbers, not as the items' own objects: one such object kept alive pins the memory its freed
    answer lived in (at 10,000 test takers ~60 MB of arenas stayed after the lists were merged)."""
    import gc

    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.sync.by_id import FanOut

    ids: list[int] = []  # the list items' own id objects (their only referrer once the run lets go)
    real_list, real_fetch = JofiClient.list, FanOut.fetch

    async def watched_list(self, entity, on_page=None):
        async def watched_page(page):
            ids.extend(item["id"] for item in page if entity in ("invitations", "test_takers") and item["id"] > 256)
            await on_page(page)

        return await real_list(self, entity, on_page=watched_page if on_page else None)

    still_held: list[int] = []

    async def counting_fetch(self, *args, **kwargs):
        if not still_held and kwargs.get("size") is not None:  # counted as the first planned by-id fetch starts
            gc.collect()
            still_held.append(sum(len([r for r in gc.get_referrers(i) if r is not ids]) > 0 for i in ids))
        return await real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(JofiClient, "list", watched_list)
    monkeypatch.setattr(FanOut, "fetch", counting_fetch)
    with nothing_frozen():  # gc.get_referrers looks among every object
        assert run(fake, store).status == "succeeded"
    assert len(ids) == 3 and held(store, "invitations") == {7, 100101, 100102, 100103}  # ids up to 256 are shared objects
    assert still_held == [0], f"{still_held[0]} of {len(ids)} ids still held by the run"


def test_list_pages_are_merged_as_they_arrive_so_no_list_is_held_whole(fake, store, monkeypatch):
    """Each list is merged batch by batch while the lists are still being read: at 10,000 test
    takers ~28,000 items held at once set the run's memory high-water for good. A run holds a few
    pages and a batch per list, and still stores every record."""
    import gc
    import weakref

    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.warehouse import RunWriter

    fake.cap = 1000  # every record in the lists' window
    for test_taker_id in range(104, 180):
        fake.add_test_taker(test_taker_id, completed=False)

    class Item(dict):  # a list item, as the client hands it on, that can be watched
        pass

    watched: list[weakref.ref] = []
    real_list, real_upsert = JofiClient.list, RunWriter.upsert

    async def paged_list(self, entity, on_page=None):  # the server's list, two items a page
        result = await real_list(self, entity)
        served = [dict(item) for item in result.items]  # what the server holds (not watched)

        def page(start):
            items = [Item(item) for item in served[start:start + 2]]  # as the client parses a page
            watched.extend(weakref.ref(item) for item in items)
            return items

        starts = range(0, len(served), 2)
        if on_page is None:
            return type(result)([item for start in starts for item in page(start)], result.total_count,
                                result.has_more, result.capped, len(starts))
        for start in starts:
            await on_page(page(start))
        return type(result)([], result.total_count, result.has_more, result.capped, len(starts))

    alive: list[int] = []

    def counting_upsert(self, entity, objects, *args, **kwargs):
        if entity in ("invitations", "test_takers"):
            gc.collect()
            alive.append(sum(ref() is not None for ref in watched))
        return real_upsert(self, entity, objects, *args, **kwargs)

    monkeypatch.setattr(JofiClient, "list", paged_list)
    monkeypatch.setattr(RunWriter, "upsert", counting_upsert)
    with only_new_objects_walked():
        assert run(fake, store, batch_size=4).status == "succeeded"
    assert held(store, "test_takers") == {101, 102, 103, *range(104, 180)}
    assert len(held(store, "invitations")) == 80  # 100101..100179 and 7
    total = len(watched)
    # At most: the queue's pages (2 per list) and one more per list waiting to be put, of 2 items
    # each; a batch being merged (4); what waits for a batch per list (3 each).
    most = (2 + 1) * len(entities.LISTS) * 2 + 4 + 3 * len(entities.LISTS)
    assert total > 160 and most < total / 2 and alive and max(alive) <= most, f"up to {max(alive)} of {total} list items held at a merge"


def test_the_account_and_the_short_lists_merge_while_the_longest_list_still_pages(fake, store, monkeypatch):
    """Nothing on the way to the by-id work waits for what it does not need: the lists are read
    while the account merges (a fresh process's first merge costs ~0.15 s), and a list that is
    whole is merged at once, not after the longest list's last page."""
    import threading

    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.warehouse import RunWriter

    real_list, real_upsert = JofiClient.list, RunWriter.upsert
    reading, users_merged = threading.Event(), threading.Event()
    waited: dict[str, bool] = {}

    async def list_(self, entity, on_page=None):
        reading.set()
        if entity == "invitations":  # the longest list: it ends only once a short one was merged
            waited["users merged before the last list ended"] = await asyncio.to_thread(users_merged.wait, 5)
        return await real_list(self, entity, on_page=on_page)

    def upsert(self, entity, objects, *args, **kwargs):  # in the run's merge thread
        if entity == "account":
            waited["lists read while the account merged"] = reading.wait(5)
        result = real_upsert(self, entity, objects, *args, **kwargs)
        if entity == "users":
            users_merged.set()
        return result

    monkeypatch.setattr(JofiClient, "list", list_)
    monkeypatch.setattr(RunWriter, "upsert", upsert)
    assert run(fake, store).status == "succeeded"
    assert waited == {"lists read while the account merged": True, "users merged before the last list ended": True}
    assert held(store, "invitations") == {7, 100101, 100102, 100103} and held(store, "users")


def _run_at_most_30_seconds(fake: FakeJofi, store: WarehouseStore, main: list, **options) -> None:
    """`run`, noting its loop and task in `main` (for a merge thread to cancel it), and ended after
    30 s all the same: the code these tests guard against waited for good."""

    async def go() -> None:
        main.append((asyncio.get_running_loop(), asyncio.current_task()))
        async with fake.client() as client:
            await run_sync(client, store, SyncOptions(**options))

    async def at_most_30_seconds() -> None:
        await asyncio.wait_for(go(), 30)

    asyncio.run(at_most_30_seconds())


@pytest.mark.parametrize("stop", ["the_merge_fails", "the_run_is_cancelled"])
def test_a_run_stopped_while_the_account_merges_and_the_list_pages_wait_ends_at_once(fake, store, monkeypatch, stop):
    """The lists are read while the account merges, so their pages fill the bounded queue. A merge
    that fails then (or a Ctrl-C, one cancel) must end the run at once with its own error, not
    leave the reads waiting for good to put their last page (the run unrecorded, the lock held)."""
    import time

    from jofi_pipeline.warehouse import RunWriter

    real_upsert = RunWriter.upsert
    main: list = []

    def upsert(self, entity, objects, *args, **kwargs):  # in the run's merge thread
        if entity == "account":
            time.sleep(0.3)  # the fake answers at once: every list's pages fill the queue meanwhile
            if stop == "the_merge_fails":
                raise OSError("disk full (injected)")
            loop, task = main[0]
            loop.call_soon_threadsafe(task.cancel)
        return real_upsert(self, entity, objects, *args, **kwargs)

    monkeypatch.setattr(RunWriter, "upsert", upsert)
    started = time.monotonic()
    with pytest.raises(SyncFailed if stop == "the_merge_fails" else asyncio.CancelledError) as ended:
        _run_at_most_30_seconds(fake, store, main)
    assert time.monotonic() - started < 15, "the run waited on its list reads after the merge stopped"
    if stop == "the_merge_fails":
        assert "disk full (injected)" in str(ended.value)
    monkeypatch.setattr(RunWriter, "upsert", real_upsert)
    assert run(fake, store).status == "succeeded"  # recorded, the writer lock let go


def test_a_run_cancelled_while_a_full_list_batch_merges_and_the_pages_wait_ends_at_once(fake, store, monkeypatch):
    """A long list (a large account) fills the bounded queue while one of its full batches merges.
    One cancel then (a CLI sync's Ctrl-C) must end the run at once: the reads, cancelled, used to
    wait for good to put their last page, so the CLI's child sat out its grace and was killed
    unrecorded (it did, before 4677d9e, for this exact case)."""
    import time

    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.warehouse import RunWriter

    fake.cap = 1000  # every record in the lists' window
    for test_taker_id in range(104, 180):
        fake.add_test_taker(test_taker_id, completed=False)
    real_list, real_upsert = JofiClient.list, RunWriter.upsert
    main: list = []
    cancelled: list = []

    async def paged_list(self, entity, on_page=None):  # the server's list, two items a page
        result = await real_list(self, entity)
        served = [dict(item) for item in result.items]
        starts = range(0, len(served), 2)
        for start in starts:
            await on_page(served[start:start + 2])
        return type(result)([], result.total_count, result.has_more, result.capped, len(starts))

    def upsert(self, entity, objects, *args, **kwargs):  # in the run's merge thread
        if entity == "test_takers" and not cancelled:
            cancelled.append(entity)
            time.sleep(0.3)  # the pages fill the queue meanwhile
            loop, task = main[0]
            loop.call_soon_threadsafe(task.cancel)
        return real_upsert(self, entity, objects, *args, **kwargs)

    monkeypatch.setattr(JofiClient, "list", paged_list)
    monkeypatch.setattr(RunWriter, "upsert", upsert)
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        _run_at_most_30_seconds(fake, store, main, batch_size=4)
    assert cancelled and time.monotonic() - started < 15, "the run waited on its list reads after it was cancelled"
    monkeypatch.setattr(RunWriter, "upsert", real_upsert)
    assert run(fake, store, batch_size=4).status == "succeeded"  # recorded, the writer lock let go


def test_a_sync_collects_young_objects_less_often_and_gives_the_thresholds_back(fake, store, monkeypatch):
    """The collector's young generation is walked every 20,000 allocations while a run writes
    (collector.sync_running), not every 700; the process's own thresholds return after it."""
    import gc

    from jofi_pipeline import collector
    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    seen: list[tuple[int, int, int]] = []
    spy(monkeypatch, RunWriter, "upsert", lambda *args, **kwargs: seen.append(gc.get_threshold()))
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        assert run(fake, store).status == "succeeded"
        assert seen and all(t == collector.SYNC_THRESHOLDS for t in seen)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_overlapping_syncs_give_the_thresholds_back_when_the_last_one_ends():
    import gc

    from jofi_pipeline import collector

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        first, second = collector.sync_running(), collector.sync_running()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert gc.get_threshold() == collector.SYNC_THRESHOLDS  # the second one still runs
        second.__exit__(None, None, None)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_run_merges_six_hundred_records_of_an_entity_in_one_write(store, monkeypatch):
    """By default a merge takes thousands of records (SyncOptions.batch_size): each write joins
    its batch against the whole table it writes, so 600 test takers read from their list are one
    merge, not two. Their details, asked for while the list paged (early_details.py), merge after
    it: every test taker once, in batches of at most the batch size."""
    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    fake = FakeJofi(cap=1000)
    for test_taker_id in range(1, 601):
        fake.add_test_taker(test_taker_id, completed=False)
    sizes: dict[str, list[int]] = {}
    spy(monkeypatch, RunWriter, "upsert",
        lambda self, entity, objects, *args, **kwargs: sizes.setdefault(entity, []).append(len(objects)))
    assert run(fake, store).status == "succeeded"
    assert sizes["test_takers"][0] == 600  # the list, then the details by id
    details = sizes["test_takers"][1:]
    assert sum(details) == 600 and max(details) <= 600, details
    assert all(n >= TAIL_BATCH_MIN for n in details[:-1]), details  # cut short only towards the end, never row by row
    assert by_id_counts(fake)[TEST_TAKER] == 600  # each asked once: the planned step leaves out what was asked early
    assert sizes["invitations"] == [600]



def test_a_failure_after_the_publish_switched_is_a_warning_of_a_run_that_published(store, monkeypatch):
    from jofi_pipeline.warehouse import publish as publish_module

    fake = FakeJofi()
    fake.add_test_taker(101)

    def links_failing(targets):
        raise OSError("injected failure fixing the links")

    monkeypatch.setattr(publish_module, "ensure_fixed_links", links_failing)
    said: list[str] = []

    async def go():
        async with fake.client() as client:
            return await run_sync(client, store, SyncOptions(), said.append)

    report = asyncio.run(go())
    assert report.status == "succeeded"
    assert any(line.startswith("live: WARNING published, but could not point jofi.duckdb and parquet at current/")
               and "injected failure fixing the links" in line for line in said), said
    assert (store.mode_dir / "current" / "jofi.duckdb").exists()


def test_a_run_recorded_published_that_failed_after_is_corrected_before_the_next_publish(store):
    """A run writes its `succeeded` row before its publish; if DuckDB then stopped its database (a
    fatal error) its failure could not be written, and the next run would have published the row."""
    from datetime import datetime, timezone

    from jofi_pipeline.warehouse import SyncRunRecord
    from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog

    fake = FakeJofi()
    fake.add_test_taker(101)
    assert run(fake, store).status == "succeeded"
    started = datetime.now(timezone.utc)
    with store.open_run("r2", started) as writer:  # what that run left: its row, never its failure
        writer.record_run(SyncRunRecord("r2", started, started, "succeeded"))
    reason = "publish failed before anything was replaced; the published copies are unchanged: FATAL Error"
    AttemptLog(ModePaths(store.data_dir, "live").attempts).record(Attempt("live", "r2", "failed", started, started, reason))

    said: list[str] = []

    async def go():
        async with fake.client() as client:
            return await run_sync(client, store, SyncOptions(), said.append)

    assert asyncio.run(go()).status == "succeeded"
    with PublishedWarehouse("live", store.data_dir).open() as reader:
        assert reader.sql("SELECT status, error FROM sync_runs WHERE run_id = 'r2'").fetchall() == [("failed", reason)]
    assert any("sync_runs said run r2 published, but it failed" in line for line in said), said
    assert sum("sync_runs said" in line for line in said) == 1


def test_a_correction_that_fails_is_said_and_the_run_goes_on(store, monkeypatch, caplog):
    import duckdb

    from jofi_pipeline.warehouse import RunWriter

    def broken(self, failed):
        raise duckdb.IOException("injected: No space left on device")

    monkeypatch.setattr(RunWriter, "correct_failed_runs", broken)
    fake = FakeJofi()
    fake.add_test_taker(101)
    with caplog.at_level("WARNING", logger="jofi_pipeline.sync"):
        assert run(fake, store).status == "succeeded"
    assert "could not correct sync_runs from the attempts file: injected" in caplog.text
