"""The refresh rules of sync/queries.py on hand-made warehouse states: which GETs a plan holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.sync import queries
from jofi_pipeline.sync.by_id import SCORECARD
from jofi_pipeline.warehouse import WarehouseStore

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DONE = "2026-02-03T12:50:36.744Z"
PARAMS = {"full": False, "in_window": [], "profiles": ["JOFI-295-AS"], "asked": []}


@pytest.fixture
def run(tmp_path):
    with WarehouseStore(tmp_path, "live").open_run("r1", T0) as writer:
        yield writer


def plan(run, sql: str) -> list[tuple]:
    used = {k: v for k, v in PARAMS.items() if f"${k}" in sql}
    return run.con.execute(sql, used).fetchall()


def rows(run, sql: str) -> list[dict]:
    cursor = run.con.execute(sql, {k: v for k, v in PARAMS.items() if f"${k}" in sql})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def prescreen(id: int, **when) -> dict:
    return {**docs.assignment(id, 5, **when), "is_used_for_scoring": False}


def test_a_test_taker_with_everything_completed_and_no_profile_is_not_asked_again(run):
    run.upsert("test_takers", [docs.test_taker(1, [docs.assignment(11, 6, completed_at=DONE)])], T0)
    assert plan(run, queries.TEST_TAKERS_NEEDING_DETAIL) == []


def test_an_open_assessment_is_asked_again(run):
    run.upsert("test_takers", [docs.test_taker(1, [docs.assignment(11, 6)])], T0)
    assert plan(run, queries.TEST_TAKERS_NEEDING_DETAIL) == [(1,)]


@pytest.mark.parametrize("signal", ["profile list", "invitation list", "test taker list"])
def test_a_profile_that_a_list_announces_fetches_its_test_taker(run, signal):
    run.upsert("test_takers", [docs.test_taker(1, [docs.assignment(11, 6, completed_at=DONE)])], T0)
    if signal == "profile list":
        run.upsert("career_navigation_profiles", [docs.career_navigation_profile("CNP1", test_taker_id=1)], T0)
    elif signal == "invitation list":
        run.upsert("invitations", [docs.invitation(7, test_taker_id=1, career_navigation_profile_id="CNP1")], T0)
    else:  # the list item updates the row itself: nothing left to ask, the derived plans see the profile
        run.upsert("test_takers", [docs.test_taker_list_item(1, career_navigation_profile_id="CNP1")], T0)
        assert plan(run, queries.TEST_TAKERS_NEEDING_DETAIL) == []
        assert [r[0] for r in plan(run, queries.JOB_FIT_REPORTS_WANTED)] == [1]
        return
    assert plan(run, queries.TEST_TAKERS_NEEDING_DETAIL) == [(1,)]
    run.upsert("test_takers", [docs.test_taker(1, [docs.assignment(11, 6, completed_at=DONE)],
                                               career_navigation_profile_id="CNP1")], T0)
    assert plan(run, queries.TEST_TAKERS_NEEDING_DETAIL) == []  # asked once, then in step


def test_a_prescreen_alone_fetches_no_scorecard_and_its_completion_changes_none(run):
    taker = docs.test_taker(1, [prescreen(10, completed_at=DONE), docs.assignment(11, 6)])
    run.upsert("test_takers", [taker], T0)
    assert plan(run, queries.SCORECARDS_WANTED) == []  # nothing scored yet

    run.upsert("test_takers", [docs.test_taker(1, [prescreen(10, completed_at=DONE),
                                                   docs.assignment(11, 6, completed_at=DONE)])], T0)
    wanted = rows(run, queries.SCORECARDS_WANTED)
    assert [(r["test_taker_id"], r["reason"]) for r in wanted] == [(1, "new")]
    run.upsert("scorecards", [docs.scorecard(1)], T0, fetched=[SCORECARD.record(wanted[0], "fetched")])
    assert plan(run, queries.SCORECARDS_WANTED) == []

    # A second, unscored assignment completes: still nothing to fetch. A scored one: fetched again.
    run.upsert("test_takers", [docs.test_taker(1, [prescreen(10, completed_at=DONE), prescreen(12, completed_at=DONE),
                                                   docs.assignment(11, 6, completed_at=DONE)])], T0)
    assert plan(run, queries.SCORECARDS_WANTED) == []
    run.upsert("test_takers", [docs.test_taker(1, [prescreen(10, completed_at=DONE), prescreen(12, completed_at=DONE),
                                                   docs.assignment(11, 6, completed_at=DONE),
                                                   docs.assignment(13, 7, completed_at=DONE)])], T0)
    assert [(r[0], r[-1]) for r in plan(run, queries.SCORECARDS_WANTED)] == [(1, "completions_changed")]


def test_state_written_under_the_old_all_assignments_hash_is_not_refetched_once(run):
    """fetch_state rows from before the rule change (no 'v2:' prefix) compare with the old hash."""
    run.upsert("test_takers", [docs.test_taker(1, [prescreen(10, completed_at=DONE),
                                                   docs.assignment(11, 6, completed_at=DONE)])], T0)
    (old_hash,) = run.con.execute(f"""
        WITH {queries._TEST_TAKER_INPUTS} SELECT all_completions_hash FROM inputs""").fetchone()
    legacy = {**rows(run, queries.SCORECARDS_WANTED)[0], "completions_hash": old_hash}
    run.upsert("scorecards", [docs.scorecard(1)], T0, fetched=[SCORECARD.record(legacy, "fetched")])
    assert plan(run, queries.SCORECARDS_WANTED) == []
    run.upsert("test_takers", [docs.test_taker(1, [prescreen(10, completed_at=DONE),
                                                   docs.assignment(11, 6, completed_at="2026-02-04T00:00:00Z")])], T0)
    assert [(r[0], r[-1]) for r in plan(run, queries.SCORECARDS_WANTED)] == [(1, "completions_changed")]


@pytest.mark.parametrize(("idle_days", "turn_days"), [(10, 1), (100, 7), (400, 28)])
def test_open_test_takers_are_refreshed_less_often_the_longer_they_have_been_idle(run, idle_days, turn_days):
    """Nightly while recently active; then a weekly turn; after 180 idle days a four-weekly one."""
    from datetime import timedelta

    today = int(datetime.now(UTC).timestamp()) // 86400
    recent = datetime(2026, 3, 1, tzinfo=UTC)
    idle_since = (recent - timedelta(days=idle_days)).isoformat()
    clock = docs.test_taker(1, [docs.assignment(1, 6, created_at=recent.isoformat())])  # the account's now
    base = 1000 * turn_days
    tonight = base + (-today) % turn_days  # (id + day) % turn == 0 tonight
    takers = [docs.test_taker(i, [docs.assignment(10 * i, 6, created_at=idle_since)])
              for i in range(base, base + turn_days)]
    run.upsert("test_takers", [clock, *takers], T0)
    planned = {r[0] for r in plan(run, queries.TEST_TAKERS_NEEDING_DETAIL)} - {1}
    assert planned == ({tonight} if turn_days > 1 else {t["id"] for t in takers})
