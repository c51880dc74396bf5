"""Backfill one score profile from Dagster: a run tagged `jofi/score_profile=<short name>` (or with
run config `score_profile`) fetches that profile's scorecards and no other profile's."""

from __future__ import annotations

import dagster as dg

from jofi_pipeline.defs.assets import SCORE_PROFILE_TAG
from jofi_pipeline.runs import ASSET_NODE, JOB_NAME, load_definitions
from jofi_pipeline_tests.incremental.helpers import SCORECARD, completed, published, requests, short_names


def run_job(tags: dict | None = None, config: dict | None = None):
    job = load_definitions().resolve_job_def(JOB_NAME)
    return job.execute_in_process(
        run_config={"ops": {ASSET_NODE: {"config": config or {}}}},
        partition_key="live",
        tags=tags or {},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_a_one_profile_backfill_fetches_only_that_profiles_scorecards(world, tmp_path):
    sim = world()
    truth = sim.truth("live")
    profiles = short_names(truth)
    chosen = profiles[2]
    scored = sum(1 for t in truth["test_takers"] if completed(t))

    result = run_job(tags={SCORE_PROFILE_TAG: chosen})
    assert result.success
    assert requests(sim, SCORECARD) == scored > 0
    with published(tmp_path) as con:
        assert con.execute(
            "SELECT score_profile_short_name, count(*) FROM scorecards GROUP BY ALL"
        ).fetchall() == [(chosen, scored)]

    # The nightly run then fetches the other profiles, and not the backfilled one again.
    sim.reset_stats()
    assert run_job().success
    assert requests(sim, SCORECARD) == scored * (len(profiles) - 1)
    with published(tmp_path) as con:
        assert con.execute("SELECT count(*) FROM scorecards").fetchone()[0] == scored * len(profiles)

    # Backfilling it again with a full refresh (run config this time) asks for that profile only.
    sim.reset_stats()
    assert run_job(config={"score_profile": chosen, "full_refresh": True}).success
    assert requests(sim, SCORECARD) == scored


def test_an_unknown_score_profile_fails_before_any_scorecard_is_fetched(world, tmp_path):
    sim = world(test_takers=20)
    result = run_job(tags={SCORE_PROFILE_TAG: "JOFI-000-XX"})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    assert "JOFI-000-XX" in failure.user_failure_data.description
    assert "not enabled" in failure.user_failure_data.description
    assert requests(sim, SCORECARD) == 0
