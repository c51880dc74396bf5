"""The `jofi-pipeline` command as a person runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jofi_pipeline import settings
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY

from jofi_pipeline_tests.cli.commands import not_run_reason, place_wrapper, shown_commands

CLI = str(Path(sys.executable).parent / "jofi-pipeline")


def run(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(simulator, tmp_path):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOFI_")},
        "DAGSTER_DISABLE_TELEMETRY": "1",
        ENV_BASE_URL: simulator.base_url,
        ENV_TEST_KEY: simulator.test_key,
        ENV_DATA_DIR: str(tmp_path / "data"),
    }


def test_sync_then_query_then_status(env):
    synced = run(["sync", "--mode", "test"], env)
    assert synced.returncode == 0, synced.stderr
    assert "test sync succeeded" in synced.stdout
    assert "invitations" in synced.stdout
    assert "fetching" in synced.stderr or "reading lists" in synced.stderr  # progress goes to stderr

    as_csv = run(["sql", "SELECT count(*) AS n FROM invitations", "--mode", "test", "--format", "csv"], env)
    assert as_csv.returncode == 0, as_csv.stderr
    header, value = as_csv.stdout.strip().splitlines()
    assert header == "n" and int(value) > 0

    as_json = run(["sql", "SELECT id, _mode FROM test_takers LIMIT 3", "-m", "test", "-f", "json"], env)
    rows = json.loads(as_json.stdout)
    assert len(rows) == 3 and {r["_mode"] for r in rows} == {"test"}

    status = run(["status"], env)
    assert status.returncode == 0, status.stderr
    assert "== test" in status.stdout and "succeeded" in status.stdout
    assert "not synced yet" in status.stdout  # live was never synced


def test_sync_without_a_key_fails_in_one_line_and_writes_nothing(env, tmp_path):
    failed = run(["sync", "--mode", "live"], env)
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and ENV_LIVE_KEY in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "data" / "live").exists()


def test_sql_on_a_missing_warehouse_says_what_to_do(env):
    result = run(["sql", "SELECT 1", "--mode", "live"], env)
    assert result.returncode != 0
    assert f"{settings.CLI} sync --mode live" in result.stderr


def test_sync_with_an_unknown_score_profile_names_the_enabled_ones(env):
    result = run(["sync", "--mode", "test", "--score-profile", "JOFI-000-XX"], env)
    assert result.returncode != 0
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert "JOFI-000-XX" in line and "JOFI-295-AS" in line


@pytest.mark.e2e  # the CLI in a process of its own, with its own simulator
def test_demo_runs_end_to_end_in_a_fresh_folder(tmp_path):
    """What `make demo` runs: its own simulator, both modes, the default relative ./data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOFI_")}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    result = subprocess.run([CLI, "demo", "--test-takers", "40"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "live sync succeeded" in result.stdout and "test sync succeeded" in result.stdout
    assert "Invitation funnel by team" in result.stdout and "pct_at_or_above_band" in result.stdout
    assert (tmp_path / "data" / "live" / "jofi.duckdb").exists()
    assert (tmp_path / "data" / "test" / "parquet" / "invitations").is_dir()

    # Every command the demo shows runs as printed, from the same folder (its simulator has gone,
    # so those needing the API are the templates and servers commands.NOT_RUN names).
    shown = shown_commands(result.stdout + result.stderr, settings.CLI)
    runnable = [c for c in shown if not_run_reason(c) is None]
    assert {"status", "sql", "describe"} <= {c.split()[1] for c in runnable}, shown
    place_wrapper(tmp_path)
    for command in runnable:
        ran = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, f"`{command}`: {ran.stderr[-1500:]}"
        assert ran.stdout.strip(), command
