"""The code location loads, with the names other people rely on, and its job really runs."""

from __future__ import annotations

import json
import subprocess

import pytest
import sys
from pathlib import Path

import dagster as dg

from jofi_pipeline.runs import load_definitions, sync_mode
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.defs.tables import SOURCE_KEY
from jofi_pipeline.warehouse import integrity
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_definitions_expose_the_contract_names():
    defs = load_definitions()
    job = defs.resolve_job_def("jofi_sync")
    assert job.partitions_def is not None
    assert sorted(job.partitions_def.get_partition_keys()) == ["live", "test"]

    schedule = defs.resolve_schedule_def("jofi_nightly_live")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.job_name == "jofi_sync"

    graph = defs.resolve_asset_graph()
    keys = {key for key in graph.get_all_asset_keys()}
    relations = {dg.AssetKey(["jofi", name]) for name in TABLES} | {dg.AssetKey(["jofi", v.name]) for v in VIEWS}
    assert keys == relations | {SOURCE_KEY}
    for key in relations:
        node = graph.get(key)
        assert node.group_name == "jofi"
        assert sorted(node.partitions_def.get_partition_keys()) == ["live", "test"]
    check_names = {check.name for check in graph.asset_check_keys}
    assert {"keys_unique_not_null", "mode_pure", "coverage", "freshness"} <= check_names


def test_every_job_runs_in_process_the_asset_graphs_implicit_one_included():
    """Materialize on the asset graph and an asset backfill run the implicit asset job: with
    Dagster's default (multiprocess) executor each such run started an interpreter for its step."""
    from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name

    jobs = load_definitions().get_repository_def().get_all_jobs()
    assert [job.name for job in jobs if is_reserved_asset_job_name(job.name)], "the asset graph's job is in the location"
    assert {job.name: job.executor_def.name for job in jobs} == {job.name: "in_process" for job in jobs}


@pytest.mark.e2e  # `dg` in a process of its own loads the whole code location
def test_dg_check_defs_accepts_the_project():
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run([str(dg_cli), "check", "defs"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_job_runs_in_process_for_one_partition(simulator, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_BASE_URL, simulator.base_url)
    monkeypatch.setenv(ENV_TEST_KEY, simulator.test_key)
    monkeypatch.setenv(ENV_LIVE_KEY, simulator.live_key)
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    asked: list[str] = []  # the verdict each rule call judges, by its name in the manifest
    named = {"keys_unique": "keys_unique_not_null", "mode_pure": "mode_pure", "account_pure": "account_pure"}
    for rule in (*named, "references"):
        real = getattr(integrity, rule)

        def heard(con, what, *rest, real=real, rule=rule):
            asked.append(f"{what.child}.{what.check_name}" if rule == "references" else f"{what}.{named[rule]}")
            return real(con, what, *rest)

        monkeypatch.setattr(integrity, rule, heard)
    outcome = sync_mode("test", instance=dg.DagsterInstance.ephemeral())
    # Each rule judged once, by the publish gate; the checks after it read the verdicts the gate
    # recorded with the published file instead of asking the published copy again.
    manifest = json.loads((tmp_path / "test" / "current" / "fingerprints.json").read_text())
    recorded = [f"{f['table']}.{f['check']}" for f in manifest["judged"]["findings"]]
    assert sorted(asked) == sorted(recorded) and len(set(asked)) == len(asked)
    assert set(outcome.tables) == set(TABLES)
    assert outcome.tables["invitations"].rows > 0
    assert outcome.tables["scorecards"].rows > 0
    assert outcome.checks_failed == []
    assert (tmp_path / "test" / "jofi.duckdb").exists()
    assert not (tmp_path / "live").exists()
