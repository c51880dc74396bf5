"""Analyst views on a small handmade dataset whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline_tests.warehouse.conftest import T0, T1

DONE = "2026-02-05T10:00:00.5Z"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    """Built once per module (per worker): its tests only read it, through a read-only connection."""
    store = WarehouseStore(tmp_path_factory.mktemp("views") / "data", "live")
    recruiting = {"id": 328, "display_name": "Recruiting"}
    training = {"id": 470, "display_name": "Executive Training"}
    with store.open_run("r1", T0) as run:
        run.upsert("invitations", [
            # team 328, ISO week starting Mon 2026-02-02
            docs.invitation(1, team=recruiting, created_at="2026-02-03T09:00:00+00:00", accepted_at="2026-02-03T10:00:00+00:00", test_taker_id=101),
            docs.invitation(2, team=recruiting, created_at="2026-02-04T09:00:00.123+00:00", accepted_at="2026-02-04T10:00:00Z", test_taker_id=102),
            docs.invitation(3, team=recruiting, created_at="2026-02-08T23:59:59Z"),
            # team 470, week of Mon 2026-02-09; #4 is linked only from the test taker's side,
            # #6 was created on Sunday local time but Monday in UTC
            docs.invitation(4, team=training, created_at="2026-02-10T09:00:00Z"),
            docs.invitation(6, team=training, created_at="2026-02-08T23:30:00-02:00"),
            docs.invitation(5, team=training, created_at="2026-02-10T09:00:00Z"),  # will 404
        ], T0)
        run.mark_deleted("invitations", [5], T1)
        run.upsert("test_takers", [
            docs.test_taker(101, invitation_id=1, team=recruiting, invitation_created_at="2026-02-03T09:00:00Z",
                            assignments=[docs.assignment(1, 6, started_at=DONE, completed_at=DONE),
                                         docs.assignment(2, 7, started_at=DONE, completed_at="2026-02-06T11:00:00Z")]),
            docs.test_taker(102, invitation_id=2, team=recruiting, invitation_created_at="2026-02-04T09:00:00Z",
                            assignments=[docs.assignment(3, 6, started_at=DONE, completed_at=DONE),
                                         docs.assignment(4, 7, progress_saved_at="2026-02-07T00:00:00Z")]),
            docs.test_taker(104, invitation_id=4, team=training, invitation_created_at="2026-02-10T09:00:00Z",
                            assignments=[docs.assignment(5, 8, started_at=DONE, completed_at=DONE)]),
        ], T0)
        # 101's profile is known only from the CNP list (test taker row still says null)
        run.upsert("career_navigation_profiles", [docs.career_navigation_profile("CNP1", test_taker_id=101)], T0)
        run.upsert("score_profiles", [docs.score_profile(295, "JOFI-295-AS", "Listed Name")], T0)
        run.upsert("scorecards", [docs.scorecard(101)], T0)
        run.publish()
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    con.execute("SET TimeZone = 'America/Sao_Paulo'")  # analysts' sessions may not be UTC
    yield con
    con.close()


def test_invitation_funnel(published):
    rows = published.execute(
        "SELECT team_id, week_start, iso_year, iso_week, invited, accepted, all_assessments_completed, with_profile "
        "FROM invitation_funnel ORDER BY week_start, team_id").fetchall()
    assert rows == [
        (328, date(2026, 2, 2), 2026, 6, 3, 2, 1, 1),
        (470, date(2026, 2, 9), 2026, 7, 2, 1, 1, 0),
    ]


def test_test_taker_progress(published):
    rows = published.execute(
        "SELECT test_taker_id, assessments_assigned, assessments_started, assessments_completed, all_completed, "
        "has_profile, last_activity_at FROM test_taker_progress ORDER BY test_taker_id").fetchall()
    assert rows == [
        (101, 2, 2, 2, True, True, datetime(2026, 2, 6, 11, 0, tzinfo=UTC)),
        (102, 2, 1, 1, False, False, datetime(2026, 2, 7, 0, 0, tzinfo=UTC)),
        (104, 1, 1, 1, True, False, datetime(2026, 2, 10, 9, 0, tzinfo=UTC)),
    ]


def test_scores_long(published):
    rows = published.execute(
        "SELECT test_taker_id, score_profile_display_name, score_path, parent_short_name, test_taker_score "
        "FROM scores_long ORDER BY section DESC, score_id").fetchall()
    assert rows == [
        (101, "Listed Name", "thinking_skills/think", None, 6.5),
        (101, "Listed Name", "thinking_skills/think/think-read", "think", 7.0),
        (101, "Listed Name", "thinking_skills/think/think-forms", "think", None),
        (101, "Listed Name", "personality_traits/pers-drive", None, 4.2),
    ]
    pivot = published.execute(
        "SELECT max(test_taker_score) FILTER (WHERE score_path = 'thinking_skills/think') FROM scores_long GROUP BY test_taker_id"
    ).fetchall()
    assert pivot == [(6.5,)]
