"""List items the store cannot keep, and what the rest of the run does about them.

An item whose id breaks the registry's rule as it is (digits as text) is not stored; it must not
count as seen in the capped window either, or its record is spared the GET by id that refreshes it
and an inbox id for it is marked applied without landing. A score profile with a blank short name
cannot be asked for: left out and said, not counted as JOFI failing every one of its scorecards.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jofi_pipeline.sync import SyncOptions, SyncReport, run_sync
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, WarehouseStore
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.sync.conftest import run
from jofi_pipeline_tests.sync.fake_jofi import FakeJofi
from jofi_pipeline_tests.warehouse import docs_shapes as docs

INVITATION = "/invitations/{invitation_id}"
SCORECARD = "/test-takers/{test_taker_id}/scorecard"


def run_saying(fake: FakeJofi, store: WarehouseStore, say) -> SyncReport:
    async def go() -> SyncReport:
        async with fake.client() as client:
            return await run_sync(client, store, SyncOptions(), say)

    return asyncio.run(go())


def published_rows(store: WarehouseStore, sql: str) -> list:
    with PublishedWarehouse(store.mode, store.data_dir).open() as reader:
        return reader.sql(sql).fetchall()


def accepted_with_a_text_id(store: WarehouseStore) -> FakeJofi:
    """Invitation 7, synced open; then accepted at JOFI, its list item naming its id as text ("7")."""
    fake = FakeJofi(cap=1000)
    fake.add_test_taker(101)
    fake.add_invitation(7, accepted_at=None)
    assert run(fake, store).status == "succeeded"
    assert published_rows(store, "SELECT accepted_at IS NULL FROM invitations WHERE id = 7") == [(True,)]
    fake.invitations[7]["accepted_at"] = "2026-02-10T10:00:00Z"

    def text_id(request: httpx.Request):
        if request.url.path.endswith("/invitations"):
            body = fake._list("invitations").json()
            for item in body["data"]:
                if item["id"] == 7:
                    item["id"] = "7"
            return httpx.Response(200, json=body)
        return None

    fake.hook = text_id
    fake.counts.clear()
    return fake


def test_an_item_with_a_text_id_does_not_spare_its_record_the_get_by_id(store):
    fake = accepted_with_a_text_id(store)
    report = run(fake, store)
    assert fake.counts[INVITATION] == 1
    assert published_rows(store, "SELECT accepted_at IS NULL FROM invitations WHERE id = 7") == [(False,)]
    assert "invitations: uncoercible id x1" in report.drift_summary()  # still counted as drift


def test_an_inbox_id_is_applied_only_once_its_record_landed(store):
    fake = accepted_with_a_text_id(store)
    with Inbox.open(ModePaths(store.data_dir, "live").inbox) as inbox:  # e.g. an invitation.accepted webhook
        inbox.add_imported("invitations", ["7"])
    assert run(fake, store).status == "succeeded"
    with Inbox.open(ModePaths(store.data_dir, "live").inbox, create=False) as inbox:
        assert inbox.counts() == {}
    assert published_rows(store, "SELECT accepted_at IS NULL FROM invitations WHERE id = 7") == [(False,)]


@pytest.mark.parametrize("blank", [" ", "\t"])  # SQL's trim() leaves a tab: Python's rule decides
def test_a_blank_score_profile_is_left_out_and_said_and_the_nights_publish(store, blank):
    fake = FakeJofi(cap=1000)
    for t in range(1, 21):
        fake.add_test_taker(t)
    fake.lists["score_profiles"].append(docs.score_profile(999, blank))
    said: list[str] = []
    for _ in range(2):
        fake.counts.clear()
        report = run_saying(fake, store, said.append)
        assert report.status == "succeeded", report.error
    assert any("score profile 999 has a blank short name" in line for line in said), said
    profiles = published_rows(store, "SELECT DISTINCT score_profile_short_name FROM scorecards")
    assert profiles and all(name.strip() for (name,) in profiles)
    assert published_rows(store, "SELECT count(*) FROM scorecards WHERE trim(score_profile_short_name) = ''") == [(0,)]
    for t in range(1, 21):  # completed again: a targeted run of them asks for their scorecards
        fake.complete(t, when="2026-03-02T10:00:00Z")
    fake.counts.clear()
    targeted = run(fake, store, targets={"test_takers": [str(t) for t in range(1, 21)]})
    assert fake.counts[SCORECARD] == 40  # both named profiles, never the blank one
    assert (targeted.status, dict(targeted.fetch_failures)) == ("succeeded", {}), targeted.error
