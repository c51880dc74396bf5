"""The integrity checks are blocking in Dagster and judged before the publish: a run whose work
database breaks one shows that check failed (ERROR) and leaves the published copy as it was."""

from __future__ import annotations


import dagster as dg
import duckdb

from jofi_pipeline.runs import load_definitions, sync_mode
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY
from jofi_pipeline.warehouse.integrity import REFERENCES, account_tables


def test_integrity_checks_block_and_coverage_freshness_and_open_references_warn():
    graph = load_definitions().resolve_asset_graph()
    blocking = {(k.asset_key.path[-1], k.name): graph.get_check_spec(k).blocking for k in graph.asset_check_keys}
    assert blocking[("test_takers", "mode_pure")] and blocking[("account", "account_pure")]
    assert blocking[("test_takers", "account_pure")] and blocking[("scorecards", "keys_unique_not_null")]
    assert blocking[("scorecard_scores", "references_scorecards_test_taker_id_score_profile_short_name")]
    assert blocking[("job_fit_reports", "references_test_takers_test_taker_id")]
    assert not blocking[("invitations", "references_test_takers_test_taker_id")], "capped windows leave it open a while"
    assert not blocking[("scorecards", "references_score_profiles_score_profile_short_name")]
    assert not any(v for (table, name), v in blocking.items() if name in ("coverage", "freshness", "last_run_complete"))
    assert {(r.child, r.check_name) for r in REFERENCES} <= set(blocking) and set(account_tables()) >= {"account"}


def test_a_run_that_breaks_a_blocking_rule_fails_with_that_check_failed_and_publishes_nothing(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=5, test_world_test_takers=5, seed=31)
    monkeypatch.setenv(ENV_BASE_URL, sim.base_url)
    monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    assert sync_mode("live", instance=instance).checks_failed == []
    published = (tmp_path / "live" / "jofi.duckdb").resolve()
    before = published.read_bytes()
    work = tmp_path / "live" / "work" / "jofi_work.duckdb"
    with duckdb.connect(str(work)) as con:  # what a copied-in test work database would hold
        con.execute("UPDATE users SET _mode = 'test' WHERE id = (SELECT min(id) FROM users)")

    result = load_definitions().resolve_job_def("jofi_sync").execute_in_process(
        run_config={"resources": {"jofi": {"config": {"data_dir": str(tmp_path), "writer_wait_seconds": 0}}},
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        partition_key="live", instance=instance, raise_on_error=False,
    )
    assert not result.success
    failed = {(e.asset_key.path[-1], e.check_name): e.severity for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {("users", "mode_pure"): dg.AssetCheckSeverity.ERROR}
    reason = next(e.step_failure_data.user_failure_data.description for e in result.all_events if e.is_step_failure)
    assert reason.startswith("publish refused, the published warehouse is unchanged: users.mode_pure: 1 row of mode test")
    assert not result.get_asset_materialization_events()
    assert (tmp_path / "live" / "jofi.duckdb").resolve() == published and published.read_bytes() == before
