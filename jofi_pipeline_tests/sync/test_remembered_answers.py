"""What the run remembers of records it could not fetch, once JOFI answers for them.

A record or derived object remembered as failing or quarantined that JOFI then answers 404 for is
no longer remembered so: fetch_state (derived) or its deletion (held records) says what it is, and
`status` stops listing it as quarantined. One that fails and then lands later in the same run (two
rules asked for it) is no failure of that run, and nothing of it is remembered."""

from __future__ import annotations

from collections import Counter

import httpx

from jofi_pipeline import analyst
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseStore
from jofi_pipeline_tests.sync.conftest import default_world, run
from jofi_pipeline_tests.sync.fake_jofi import FakeJofi, _list_item


def published_rows(store: WarehouseStore, sql: str) -> list:
    with PublishedWarehouse(store.mode, store.data_dir).open() as reader:
        return reader.sql(sql).fetchall()


def status_lines(store: WarehouseStore) -> list[str]:
    with PublishedWarehouse("live", store.data_dir).open() as reader:
        return analyst._remembered_lines(reader.remembered(), "live")


def test_a_quarantined_scorecard_answered_404_on_full_is_no_longer_listed(store):
    fake = default_world()
    fake.fail["/test-takers/101/scorecard"] = 500  # both profiles' scorecards of 101
    for _ in range(3):
        run(fake, store)
    assert published_rows(store, "SELECT count(*) FROM fetch_outcomes WHERE failed_runs >= 3") == [(2,)]
    assert any("quarantined" in line for line in status_lines(store))

    fake.fail["/test-takers/101/scorecard"] = 404  # JOFI now: no scorecard (yet)
    assert run(fake, store, full_refresh=True).status == "succeeded"
    state = published_rows(store, "SELECT outcome FROM fetch_state WHERE kind = 'scorecard' AND test_taker_id = 101")
    assert [o for (o,) in state] == ["not_found", "not_found"]
    assert published_rows(store, "SELECT count(*) FROM fetch_outcomes") == [(0,)]
    assert not any("quarantined" in line for line in status_lines(store))


def test_a_failing_held_record_answered_404_is_deleted_and_no_longer_remembered(store):
    fake = FakeJofi(cap=1000)
    fake.add_test_taker(101)
    for invitation_id in (7, 8, 9):
        fake.add_invitation(invitation_id, accepted_at=None)
    assert run(fake, store).status == "succeeded"
    # Open invitation 7 falls out of the list's window: each run refreshes it by id.
    fake.lists["invitations"] = [_list_item("invitations", fake.invitations[i]) for i in (9, 8)]
    fake.fail["/invitations/7"] = 500
    assert run(fake, store).status == "partial"
    assert published_rows(store, "SELECT entity, record_key, outcome FROM fetch_outcomes") == [("invitations", "7", "failing")]

    fake.fail["/invitations/7"] = 404  # deleted at JOFI
    assert run(fake, store).status == "succeeded"
    assert published_rows(store, "SELECT _deleted_at IS NOT NULL FROM invitations WHERE id = 7") == [(True,)]
    assert published_rows(store, "SELECT count(*) FROM fetch_outcomes") == [(0,)]


def test_a_record_that_fails_then_lands_in_the_same_run_is_no_failure(store):
    fake = default_world()  # invitation 7 open; test takers 101..103 with invitations 100101..100103
    fake.cap = 1000
    fake.add_test_taker(104)
    fake.add_test_taker(105)
    assert run(fake, store).status == "succeeded"  # invitation 7 held, open
    fake.cap = 5  # 100105..100101 in the window, 7 outside it
    fake.add_test_taker(106, invitation_id=7)  # 7 accepted by a new test taker (in the window)
    failed = Counter()

    def first_ask_fails(request: httpx.Request):  # every attempt of the first GET (open invitations)
        if request.url.path.endswith("/invitations/7") and failed["n"] < 3:
            failed["n"] += 1
            return httpx.Response(500, json={"mode": "live", "error": {"type": "api_error", "message": "injected"}})
        return None

    fake.hook = first_ask_fails
    fake.counts.clear()
    report = run(fake, store)  # the second ask (invitations behind their test takers) brings it in
    assert failed["n"] == 3 and fake.counts["/invitations/{invitation_id}"] == 1  # the hook answers uncounted
    assert published_rows(store, "SELECT accepted_at IS NOT NULL, test_taker_id FROM invitations WHERE id = 7") == [(True, 106)]
    assert (report.status, report.error, dict(report.fetch_failures)) == ("succeeded", None, {})
    assert published_rows(store, "SELECT count(*) FROM fetch_outcomes") == [(0,)]


def test_a_failure_counts_once_and_a_recovery_refills_the_samples():
    from jofi_pipeline.sync.report import SyncReport, utc_now

    report = SyncReport("r1", "live", utc_now())
    error = RuntimeError("injected")
    for key in (1, 2, 3, 4, 1):
        report.add_fetch_failure("invitations", key, error, str(key))
    assert report.fetch_failures["invitations"] == 4
    report.fetch_recovered("invitations", ["2", "9"])
    assert report.fetch_failures["invitations"] == 3
    assert report.fetch_failure_samples["invitations"] == ["1 (RuntimeError)", "3 (RuntimeError)", "4 (RuntimeError)"]
    report.fetch_recovered("invitations", ["1", "3", "4"])
    assert report.fetch_failures_text() == "" and not report.fetch_failures


def test_a_record_that_fails_then_is_gone_in_the_same_run_is_no_failure(store):
    fake = default_world()
    fake.cap = 1000
    fake.add_test_taker(104)
    fake.add_test_taker(105)
    assert run(fake, store).status == "succeeded"
    fake.cap = 5  # 7 outside the window
    fake.add_test_taker(106, invitation_id=7)  # and named by a new test taker: asked twice
    asked = Counter()

    def fails_then_gone(request: httpx.Request):
        if request.url.path.endswith("/invitations/7"):
            asked["n"] += 1
            return fake._error(500 if asked["n"] <= 3 else 404, "injected")
        return None

    fake.hook = fails_then_gone
    report = run(fake, store)
    assert asked["n"] == 4
    assert (report.status, report.error, dict(report.fetch_failures)) == ("succeeded", None, {})
    assert published_rows(store, "SELECT _deleted_at IS NOT NULL FROM invitations WHERE id = 7") == [(True,)]
    assert published_rows(store, "SELECT count(*) FROM fetch_outcomes") == [(0,)]
