"""The incremental rules, counted at the simulator: a derived object is asked for again only when
its inputs changed, open records are the only ones refreshed by id, and a full refresh asks for all."""

from __future__ import annotations

from jofi_pipeline_tests.e2e.helpers import sync
from jofi_pipeline_tests.incremental.helpers import (
    JOB_FIT, SCORECARD, TEST_TAKER, by_id, completed, inputs, published, requests, short_names, work_db,
)


def is_open(test_taker: dict) -> bool:
    """An assessment left to complete (or none known): all completed and no profile is not open,
    a profile it gains later is announced by the lists."""
    assessments = test_taker.get("assigned_assessments") or []
    return not assessments or any(a.get("completed_at") is None for a in assessments)


# Enough test takers for every kind the rules tell apart (scored or not, open or not, with a
# profile or not, changed by a day or not); each one more is requests and rows in every sync.
TEST_TAKERS = 30


def test_a_second_sync_without_activity_fetches_no_scorecards_or_job_fit_reports(world, tmp_path):
    sim = world(test_takers=TEST_TAKERS)
    sync(sim, "live", tmp_path)
    truth = sim.truth("live")
    scored = [t for t in truth["test_takers"] if completed(t)]
    with_profile = [t for t in truth["test_takers"] if t.get("career_navigation_profile_id")]
    assert requests(sim, SCORECARD) == len(scored) * len(short_names(truth)) > 0
    assert requests(sim, JOB_FIT) == len(with_profile) > 0

    sim.reset_stats()
    report = sync(sim, "live", tmp_path)
    assert report.status == "succeeded"
    assert requests(sim, SCORECARD) == 0
    assert requests(sim, JOB_FIT) == 0
    # By id: only the test takers that can still change (an assessment left to complete).
    open_takers = [t for t in truth["test_takers"] if is_open(t)]
    assert 0 < len(open_takers) < len(truth["test_takers"])
    assert requests(sim, TEST_TAKER) == len(open_takers)


def test_after_a_day_only_changed_test_takers_are_fetched_again(world, tmp_path):
    sim = world(test_takers=TEST_TAKERS)
    sync(sim, "live", tmp_path)
    before = by_id(sim.truth("live"))
    sim.advance(2)
    truth = sim.truth("live")
    after = by_id(truth)
    changed = {i for i, t in after.items() if i not in before or inputs(t) != inputs(before[i])}
    want_scorecards = {i for i in changed if completed(after[i])}
    want_job_fit = {i for i in changed if after[i].get("career_navigation_profile_id")}
    scored = {i for i, t in after.items() if completed(t)}
    assert want_scorecards and want_scorecards < scored, "the day should change some, not all, scored test takers"

    sim.reset_stats()
    report = sync(sim, "live", tmp_path)
    profiles = short_names(truth)
    assert requests(sim, SCORECARD) == len(want_scorecards) * len(profiles)
    assert requests(sim, JOB_FIT) == len(want_job_fit)

    with work_db(tmp_path) as con:
        rows = con.execute(
            "SELECT kind, test_taker_id, score_profile_short_name, reason FROM fetch_state WHERE run_id = ?",
            [report.run_id],
        ).fetchall()
    fetched = {(tt, sp) for kind, tt, sp, _ in rows if kind == "scorecard"}
    assert fetched == {(tt, sp) for tt in want_scorecards for sp in profiles}
    assert {tt for kind, tt, _, _ in rows if kind == "job_fit_report"} == want_job_fit
    # Why: a test taker scored for the first time is 'new', one scored before has new completions.
    reasons = {(tt, reason) for kind, tt, _, reason in rows if kind == "scorecard"}
    previously_scored = {i for i in want_scorecards if i in before and completed(before[i])}
    assert reasons == {(tt, "completions_changed" if tt in previously_scored else "new") for tt in want_scorecards}

    with published(tmp_path) as con:  # and the warehouse is complete: one scorecard per pair
        assert con.execute("SELECT count(*) FROM scorecards").fetchone()[0] == len(scored) * len(profiles)
        assert con.execute("SELECT count(*) FROM job_fit_reports").fetchone()[0] == sum(
            1 for t in after.values() if t.get("career_navigation_profile_id"))


def test_a_full_refresh_fetches_everything_again(world, tmp_path):
    # Capped lists (50 newest): what they hide must come by id. 100 test takers leave 62 invitations
    # and 66 profiles held after three days (seed 21), enough beyond the cap.
    sim = world(pagination="none", test_takers=100)
    sync(sim, "live", tmp_path)
    sim.advance(3)  # the windows move on: the warehouse now holds records no list returns
    sync(sim, "live", tmp_path)
    truth = sim.truth("live")
    with published(tmp_path) as con:
        held = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("invitations", "test_takers", "career_navigation_profiles")}
        held_ids = {i for (i,) in con.execute("SELECT id FROM test_takers").fetchall()}
    sim.reset_stats()
    report = sync(sim, "live", tmp_path, full_refresh=True)

    takers = [t for t in truth["test_takers"] if t["id"] in held_ids]
    scored = [t for t in takers if completed(t)]
    assert requests(sim, SCORECARD) == len(scored) * len(short_names(truth)) > 0
    assert requests(sim, JOB_FIT) == sum(1 for t in takers if t.get("career_navigation_profile_id")) > 0
    assert requests(sim, TEST_TAKER) == held["test_takers"] == len(takers)
    # Invitations and profiles: every one held that the capped lists (50 newest) did not just return.
    stats = sim.stats()["routes"]
    for entity, route in (("invitations", "GET /invitations/{id}"),
                          ("career_navigation_profiles", "GET /career-navigation-profiles/{id}")):
        assert held[entity] > 50, (entity, held)
        assert stats.get(route, {}).get("total", 0) == held[entity] - 50, entity
    with work_db(tmp_path) as con:
        reasons = con.execute(
            "SELECT DISTINCT reason FROM fetch_state WHERE run_id = ?", [report.run_id]
        ).fetchall()
    assert reasons == [("full_refresh",)]
