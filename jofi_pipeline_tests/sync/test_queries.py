"""The fetch-plan queries over a real work database: which records a run asks for by id, and why."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from jofi_pipeline.sync import queries
from jofi_pipeline.sync.by_id import JOB_FIT_REPORT, SCORECARD
from jofi_pipeline.sync.plan import Plan
from jofi_pipeline.warehouse import RunWriter, WarehouseStore
from jofi_pipeline.warehouse.records import PLAN_COLUMNS
from jofi_pipeline_tests.warehouse import docs_shapes as docs

NOW = datetime(2026, 3, 1, tzinfo=UTC)
RECENT, DORMANT = "2026-02-20T09:00:00Z", "2025-10-01T09:00:00Z"  # the account's clock: newest activity


@pytest.fixture
def writer(tmp_path):
    with WarehouseStore(tmp_path, "live").open_run("run-1", NOW) as run:
        yield run


def planned(writer: RunWriter, sql: str, *, full=False, in_window=(), profiles=(), asked=()) -> list[tuple]:
    params = {"full": full, "in_window": list(in_window), "profiles": list(profiles), "asked": list(asked)}
    reader = writer.reader()
    try:
        with Plan(reader, sql, params) as plan:
            return list(plan)
    finally:
        reader.close()


def ids(rows: list[tuple]) -> list:
    return [row[0] for row in rows]


def tonight(offset: int) -> int:
    """An id that is (offset 0) or is not (offset 1..6) in tonight's seventh of the dormant rotation."""
    return 700 + (-(700 + int(time.time()) // 86400) % 7 + offset) % 7


def test_open_invitations_recent_nightly_dormant_in_rotation_accepted_never(writer):
    writer.upsert("invitations", [
        docs.invitation(1, created_at=RECENT),
        docs.invitation(2, created_at=RECENT, accepted_at=RECENT, test_taker_id=50),
        docs.invitation(tonight(0), created_at=DORMANT),
        docs.invitation(tonight(1), created_at=DORMANT),
        docs.invitation(4, created_at=RECENT),
    ], NOW)
    writer.mark_deleted("invitations", [4], NOW)
    assert ids(planned(writer, queries.OPEN_INVITATIONS)) == [1, tonight(0)]
    assert ids(planned(writer, queries.OPEN_INVITATIONS, in_window=[1])) == [tonight(0)]
    assert ids(planned(writer, queries.OPEN_INVITATIONS, full=True, in_window=[1])) == sorted(
        [2, 4, tonight(0), tonight(1)]
    )


def test_test_takers_without_detail_open_or_only_referenced_are_fetched(writer):
    done = "2026-02-10T10:00:00Z"
    writer.upsert("test_takers", [
        docs.test_taker_list_item(1),  # listed, never fetched by id: no assignments held
        docs.test_taker(2, assignments=[docs.assignment(1, 6, completed_at=done)], career_navigation_profile_id="CNP2"),
        docs.test_taker(3, assignments=[docs.assignment(1, 6, created_at=RECENT)]),  # an assessment still open
    ], NOW)
    writer.upsert("invitations", [docs.invitation(10, test_taker_id=99, accepted_at=RECENT)], NOW)
    assert ids(planned(writer, queries.TEST_TAKERS_NEEDING_DETAIL)) == [1, 3, 99]
    assert ids(planned(writer, queries.TEST_TAKERS_NEEDING_DETAIL, full=True)) == [1, 2, 3, 99]
    # Asked for already this run (while the lists paged): left out, on a full refresh too.
    assert ids(planned(writer, queries.TEST_TAKERS_NEEDING_DETAIL, asked=[1, 3])) == [99]
    assert ids(planned(writer, queries.TEST_TAKERS_NEEDING_DETAIL, full=True, asked=[1, 2, 3])) == [99]


def test_a_test_taker_asked_for_early_is_asked_again_when_a_list_names_a_profile_it_lacks(writer):
    """`$asked` leaves out the first rule only: a profile a list names after the early answer is followed."""
    writer.upsert("test_takers", [docs.test_taker(2, assignments=[docs.assignment(1, 6, created_at=RECENT)])], NOW)
    writer.upsert("invitations", [docs.invitation(10, test_taker_id=2, accepted_at=RECENT, career_navigation_profile_id="CNP9")], NOW)
    assert ids(planned(writer, queries.TEST_TAKERS_NEEDING_DETAIL, asked=[2])) == [2]


def test_invitations_behind_their_test_taker_are_refreshed(writer):
    writer.upsert("invitations", [docs.invitation(10, created_at=RECENT), docs.invitation(11, created_at=RECENT)], NOW)
    writer.upsert("test_takers", [docs.test_taker(5, invitation_id=10)], NOW)
    assert ids(planned(writer, queries.INVITATIONS_BEHIND_TEST_TAKERS)) == [10]
    assert ids(planned(writer, queries.INVITATIONS_BEHIND_TEST_TAKERS, in_window=[10])) == []


def test_profiles_referenced_but_not_held_are_fetched(writer):
    writer.upsert("career_navigation_profiles", [docs.career_navigation_profile("CNPHELD", 5)], NOW)
    writer.upsert("test_takers", [docs.test_taker(5, career_navigation_profile_id="CNPHELD"),
                                  docs.test_taker(6, career_navigation_profile_id="CNPNEW")], NOW)
    assert ids(planned(writer, queries.PROFILES_NEEDED)) == ["CNPNEW"]
    assert ids(planned(writer, queries.PROFILES_NEEDED, full=True)) == ["CNPHELD", "CNPNEW"]
    assert ids(planned(writer, queries.PROFILES_NEEDED, full=True, in_window=["CNPHELD"])) == ["CNPNEW"]


def test_scorecards_are_wanted_when_new_or_their_inputs_changed(writer):
    done = "2026-02-10T10:00:00Z"
    writer.upsert("test_takers", [
        docs.test_taker(5, assignments=[docs.assignment(1, 6, completed_at=done), docs.assignment(2, 7)]),
        docs.test_taker(6, assignments=[docs.assignment(1, 6)]),  # nothing completed: no scorecard yet
    ], NOW)
    first = planned(writer, queries.SCORECARDS_WANTED, profiles=["SP-A", "SP-B"])
    assert [(r[0], r[1], r[-1]) for r in first] == [(5, "SP-A", "new"), (5, "SP-B", "new")]
    record(writer, SCORECARD, first)
    assert planned(writer, queries.SCORECARDS_WANTED, profiles=["SP-A", "SP-B"]) == []
    assert [r[-1] for r in planned(writer, queries.SCORECARDS_WANTED, full=True, profiles=["SP-A"])] == ["full_refresh"]

    writer.upsert("test_takers", [docs.test_taker(5, assignments=[
        docs.assignment(1, 6, completed_at=done), docs.assignment(2, 7, completed_at="2026-02-28T10:00:00Z")])], NOW)
    again = planned(writer, queries.SCORECARDS_WANTED, profiles=["SP-A", "SP-B", "SP-C"])
    assert [(r[1], r[-1]) for r in again] == [("SP-A", "completions_changed"), ("SP-B", "completions_changed"),
                                              ("SP-C", "new")]


def test_job_fit_reports_follow_the_profile(writer):
    writer.upsert("test_takers", [docs.test_taker(5, career_navigation_profile_id="CNP1"), docs.test_taker(6)], NOW)
    first = planned(writer, queries.JOB_FIT_REPORTS_WANTED)
    assert [(r[0], r[1], r[-1]) for r in first] == [(5, None, "new")]
    record(writer, JOB_FIT_REPORT, first)
    writer.upsert("test_takers", [docs.test_taker(5, career_navigation_profile_id="CNP2")], NOW)
    assert [r[-1] for r in planned(writer, queries.JOB_FIT_REPORTS_WANTED)] == ["profile_changed"]


def test_derived_plans_select_the_fetch_record_columns_by_name(writer):
    reader = writer.reader()
    for sql, params in ((queries.SCORECARDS_WANTED, {"profiles": []}), (queries.JOB_FIT_REPORTS_WANTED, {})):
        with Plan(reader, sql, {"full": False, **params}) as plan:
            assert plan.columns == PLAN_COLUMNS
    reader.close()


def record(writer: RunWriter, derived, rows: list[tuple]) -> None:
    """What the fan-out commits with fetched objects: one fetch_state row per plan row."""
    named = [dict(zip(PLAN_COLUMNS, row, strict=True)) for row in rows]
    writer.upsert(derived.entity, [], NOW, fetched=[derived.record(row, "fetched") for row in named])
