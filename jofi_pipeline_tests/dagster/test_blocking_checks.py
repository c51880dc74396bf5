"""The integrity checks are blocking in Dagster and judged before the publish: a run whose work
database breaks one shows that check failed (ERROR) and leaves the published copy as it was."""

from __future__ import annotations


import dagster as dg
import duckdb

from jofi_pipeline.defs.checks import RULES, integrity_results, rule_of
from jofi_pipeline.runs import load_definitions, sync_mode
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY
from jofi_pipeline.warehouse.integrity import REFERENCES, Finding, account_tables


def test_integrity_checks_block_and_coverage_freshness_and_open_references_warn():
    graph = load_definitions().resolve_asset_graph()
    blocking = {(k.asset_key.path[-1], k.name): graph.get_check_spec(k).blocking for k in graph.asset_check_keys}
    # one check per rule over every table, on sync_runs (the failing tables are named in its result)
    assert blocking[("sync_runs", "mode_pure")] and blocking[("sync_runs", "account_pure")]
    assert blocking[("sync_runs", "keys_unique_not_null")] and blocking[("sync_runs", "references_resolve")]
    assert not blocking[("sync_runs", "references_pending")], "capped windows leave them open a while"
    assert not blocking[("sync_runs", "history_chains")]
    assert not any(v for (table, name), v in blocking.items() if name in ("coverage", "freshness", "last_run_complete"))
    # every per-table finding of the integrity rules has its check, blocking exactly when it blocks
    for ref in REFERENCES:
        assert blocking[("sync_runs", rule_of(Finding(ref.check_name, ref.child, True, ref.blocking)).name)] == ref.blocking
    assert len(graph.asset_check_keys) == len(RULES) + 3 + 2, "rules, coverage of the capped lists, freshness, last run"
    assert set(account_tables()) >= {"account"}


def test_a_rules_result_names_the_failing_tables_and_adds_up_their_numbers():
    found = [
        Finding("mode_pure", "users", False, True, {"expected_mode": "live", "rows_of_other_modes": 2}, "2 rows of mode test", "move it aside"),
        Finding("mode_pure", "teams", True, True, {"expected_mode": "live", "rows_of_other_modes": 0}),
        Finding("mode_pure", "scorecards", False, True, {"expected_mode": "live", "rows_of_other_modes": 3}, "3 rows of mode test", "move it aside"),
        Finding("references_test_takers_test_taker_id", "invitations", False, False, {"dangling_rows": 4, "sample_values": "[7]"}, "4 dangling", "sync --full"),
    ]
    results = {r.check_name: r for r in integrity_results(found)}
    assert set(results) == {"mode_pure", "references_pending"}
    mode = results["mode_pure"]
    assert not mode.passed and mode.severity == dg.AssetCheckSeverity.ERROR and mode.asset_key.path[-1] == "sync_runs"
    assert mode.description == "failed on 2 of 3 tables: users, scorecards"
    md = {k: v.value for k, v in mode.metadata.items()}
    assert md["failed_tables"] == "users, scorecards" and md["rows_of_other_modes"] == 5 and md["tables_checked"] == 3
    assert md["problem"] == "users.mode_pure: 2 rows of mode test; scorecards.mode_pure: 3 rows of mode test"
    assert "| users | 2 rows of mode test |" in md["failing_tables"]
    pending = results["references_pending"]
    assert pending.severity == dg.AssetCheckSeverity.WARN and not pending.passed
    assert {k: v.value for k, v in pending.metadata.items()}["sample_values"] == "invitations: [7]"


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
    failed = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed}
    assert list(failed) == [("sync_runs", "mode_pure")] and failed["sync_runs", "mode_pure"].severity == dg.AssetCheckSeverity.ERROR
    assert failed["sync_runs", "mode_pure"].metadata["failed_tables"].value == "users"  # the table that failed is named
    assert failed["sync_runs", "mode_pure"].description.endswith("tables: users")
    reason = next(e.step_failure_data.user_failure_data.description for e in result.all_events if e.is_step_failure)
    assert reason.startswith("publish refused, the published warehouse is unchanged: users.mode_pure: 1 row of mode test")
    assert not result.get_asset_materialization_events()
    assert (tmp_path / "live" / "jofi.duckdb").resolve() == published and published.read_bytes() == before
