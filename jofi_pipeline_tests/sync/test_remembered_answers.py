"""A record or derived object remembered as failing or quarantined that JOFI then answers 404 for
is no longer remembered so: fetch_state (derived) or its deletion (held records) says what it is,
and `status` stops listing it as quarantined."""

from __future__ import annotations

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
