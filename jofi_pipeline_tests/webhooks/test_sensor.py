"""The sensor asks for a run with exactly the ids new events named; that run fetches exactly those."""

from __future__ import annotations

import dagster as dg

from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.sensors import jofi_webhook_events
from jofi_pipeline.runs import load_definitions
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.e2e.helpers import ids, published, sync
from jofi_pipeline_tests.webhooks.helpers import SECRET, ReceiverThread


def evaluate(context: dg.SensorEvaluationContext):
    return jofi_webhook_events(context)


def expected_targets(summary: dict) -> dict[str, set[str]]:
    """Independently of the receiver: which records the day's activity touched, by the documented event types."""
    completed = {ref["test_taker_id"] for ref in summary["assessments_completed"]}
    return {
        "invitations": {str(i) for i in summary["invitations_created"] + summary["invitations_accepted"]},
        "test_takers": {str(i) for i in set(summary["test_takers_created"]) | completed},
        "career_navigation_profiles": set(summary["career_navigation_profiles_created"]),
    }


def test_sensor_requests_exactly_the_affected_ids_and_the_run_fetches_only_those(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=20, seed=13, daily_invitations=30)
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    resource = JofiSyncResource(data_dir=str(tmp_path), base_url=sim.base_url)
    instance = dg.DagsterInstance.ephemeral()
    sync(sim, "live", tmp_path)  # the warehouse as of yesterday

    with ReceiverThread(tmp_path) as receiver:
        sim.set_webhooks(url=receiver.url, secret=SECRET)
        summary = sim.advance(1)
        assert sim.flush_webhooks()["flushed"]
    wanted = expected_targets(summary)
    assert all(wanted.values())

    context = dg.build_sensor_context(instance=instance, resources={"jofi": resource})
    result = evaluate(context)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    request = result.run_requests[0]
    targets = request.run_config["ops"]["jofi_warehouse"]["config"]["targets"]
    assert {e: set(v) for e, v in targets.items()} == wanted
    assert request.partition_key == "live"
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
        assert result.cursor == str(inbox.last_seq())

    again = evaluate(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={"jofi": resource}))
    assert isinstance(again, dg.SkipReason)

    # Run exactly what the sensor asked for, as the daemon would.
    sim.reset_stats()
    job = load_definitions().resolve_job_def("jofi_sync")
    run_config = {**request.run_config, "resources": {"jofi": {"config": {"data_dir": str(tmp_path), "base_url": sim.base_url}}}}
    run = job.execute_in_process(run_config=run_config, partition_key="live", instance=instance, tags=request.tags)
    assert run.success

    truth = sim.truth("live")
    takers = {str(t["id"]): t for t in truth["test_takers"]}
    # Scorecards are made of the assessments JOFI scores (`is_used_for_scoring`): a Prescreen alone fetches none.
    completed = [t for t in wanted["test_takers"] if any(
        a["completed_at"] and a.get("is_used_for_scoring") is not False for a in takers[t]["assigned_assessments"])]
    with_profile = [t for t in wanted["test_takers"] if takers[t]["career_navigation_profile_id"]]
    routes = {name: entry["by_mode"].get("live", 0) for name, entry in sim.stats()["routes"].items()}
    assert routes.get("GET /invitations/{id}") == len(wanted["invitations"])
    assert routes.get("GET /test-takers/{id}") == len(wanted["test_takers"])
    assert routes.get("GET /career-navigation-profiles/{id}") == len(wanted["career_navigation_profiles"])
    assert routes.get("GET /test-takers/{id}/scorecard") == len(completed) * len(truth["score_profiles"])
    assert routes.get("GET /test-takers/{id}/job-fit-report", 0) == len(with_profile)
    assert not {"GET /invitations", "GET /test-takers", "GET /career-navigation-profiles", "GET /users"} & set(routes)

    with published(tmp_path, "live") as con:
        assert {str(i) for i in ids(con, "test_takers")} >= wanted["test_takers"]
        assert {str(i) for i in ids(con, "invitations")} >= wanted["invitations"]
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
        assert inbox.unapplied() == []  # applied only now that the run committed them
