"""When the upload to object storage is killed or fails: readers keep the previous complete version,
the local publish stands, the operator sees it, and the next run puts a complete version up."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import dagster as dg
import duckdb
from typer.testing import CliRunner

from jofi_pipeline.analyst import status_text
from jofi_pipeline.cli import app
from jofi_pipeline.runs import SyncJobFailed, sync_mode
from jofi_pipeline.warehouse.paths import CURRENT_LINK
from jofi_pipeline.warehouse.publish import VERSION_PREFIX
from jofi_pipeline.warehouse.remote import MANIFEST_NAME, read_state
from jofi_pipeline.warehouse.paths import ModePaths
from jofi_pipeline_tests.deploy.services import Process, SlowLink, wait_for
from jofi_pipeline_tests.deploy.test_remote import run_readme_reader
from jofi_pipeline_tests.e2e.helpers import sync

UPLINK_BYTES_PER_S = 400_000  # the test world's database is ~5 MB: >10 s to send it


def local_version(data: Path, mode: str) -> str:
    return os.readlink(data / mode / CURRENT_LINK).removeprefix(VERSION_PREFIX)


def local_rows(data: Path, mode: str, table: str) -> int:
    with duckdb.connect(str(data / mode / "jofi.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_killed_upload_leaves_readers_on_the_previous_complete_version(sim, aws_env, tmp_path, monkeypatch):
    bucket = aws_env.new_bucket()
    url = f"s3://{bucket}/jofi"
    data = tmp_path / "data"
    first = sync(sim, "test", data, publish_url=url)
    assert first.remote.ok
    v1 = first.remote.version
    readers_saw = run_readme_reader(f"{url}/test/current.json", tmp_path, monkeypatch)
    assert readers_saw["pointer"]["version"] == v1

    # The next sync publishes locally, then uploads over a slow link; kill -9 it mid-upload.
    link = SlowLink(aws_env.port, UPLINK_BYTES_PER_S)
    env = {**os.environ, **sim.env(), **aws_env.env(endpoint=link.endpoint),
           "JOFI_DATA_DIR": str(data), "JOFI_PUBLISH_URL": url}
    sync_proc = Process([sys.executable, "-m", "jofi_pipeline_tests.deploy.sync_process", "test"], env, tmp_path / "sync.log")
    try:
        def new_version_keys():
            keys = [k for k in aws_env.objects(bucket, "jofi/test/") if k.count("/") > 2 and k.split("/")[2] != v1]
            return keys if len(keys) >= 3 else None

        partial = wait_for(new_version_keys, 90, "the second upload to be under way")
        os.killpg(sync_proc.proc.pid, signal.SIGKILL)
        sync_proc.proc.wait()
    finally:
        sync_proc.stop()
        link.close()
    v2 = partial[0].split("/")[2]
    assert "uploading to" in sync_proc.text() and "uploaded" not in sync_proc.text(), sync_proc.text()
    assert sync_proc.proc.returncode == -signal.SIGKILL

    # The local publish had happened and stays: the local warehouse is the record.
    assert local_version(data, "test") == v2
    assert local_rows(data, "test", "sync_runs") == 2
    # The store holds half of v2, and readers never see it: the pointer still names v1.
    left = aws_env.objects(bucket, f"jofi/test/{v2}/")
    assert left and f"jofi/test/{v2}/{MANIFEST_NAME}" not in left and f"jofi/test/{v2}/jofi.duckdb" not in left
    assert aws_env.get_json(bucket, "jofi/test/current.json")["version"] == v1
    readers_see = run_readme_reader(f"{url}/test/current.json", tmp_path, monkeypatch)
    assert readers_see["pointer"]["version"] == v1
    assert len(readers_see["test_takers"]) == len(readers_saw["test_takers"])
    with duckdb.connect(str(tmp_path / "jofi-live.duckdb"), read_only=True) as downloaded:
        assert downloaded.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 1, "v1 held one run"
    # The operator sees the unfinished upload.
    state = read_state(ModePaths(data, "test").remote_state)
    assert state["state"] == "uploading"
    assert f"the upload of {v2} started at" in status_text(data_dir=data)

    # The operator uploads the local version now: only the files the store lacks are sent
    # (the kill -9 released the writer lock).
    cli = CliRunner().invoke(app, ["publish-remote", "--mode", "test"], env={"JOFI_DATA_DIR": str(data), "JOFI_PUBLISH_URL": url})
    assert cli.exit_code == 0, cli.output
    assert f"uploaded {v2} to {url}/test/" in cli.output and f"{len(left)} already there" in cli.output
    assert aws_env.get_json(bucket, "jofi/test/current.json")["version"] == v2
    # The next run uploads a complete new version; every version left in the store is complete.
    third = sync(sim, "test", data, publish_url=url)
    assert third.remote.ok and third.remote.previous == v2
    # Tables the run did not change keep their bytes (the local publish hard-links them), so the
    # store copies them from v2 instead of receiving them again.
    assert third.remote.copied > 0 and third.remote.uploaded > 0
    assert aws_env.get_json(bucket, "jofi/test/current.json")["version"] == local_version(data, "test") == third.remote.version
    objects = aws_env.objects(bucket, "jofi/test/")
    versions = {k.split("/")[2] for k in objects if k.count("/") > 2}
    assert versions == {v1, v2, third.remote.version}
    assert all(f"jofi/test/{v}/{MANIFEST_NAME}" in objects for v in versions)
    readers_now = run_readme_reader(f"{url}/test/current.json", tmp_path, monkeypatch)
    with duckdb.connect(str(tmp_path / "jofi-live.duckdb"), read_only=True) as downloaded:
        assert downloaded.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 3
    assert readers_now["pointer"]["version"] == third.remote.version


def test_a_failed_upload_fails_the_dagster_run_after_recording_the_local_publish(sim, aws_env, tmp_path, monkeypatch):
    bucket = f"jofi-missing-{os.getpid()}"
    url = f"s3://{bucket}/jofi"
    monkeypatch.setenv("JOFI_PUBLISH_URL", url)
    secret = "aws-secret-" + "x" * 20
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)  # the test server accepts any
    data = tmp_path / "data"
    instance = dg.DagsterInstance.ephemeral()

    try:
        sync_mode("live", data_dir=data, instance=instance)
        raise AssertionError("the run should have failed")
    except SyncJobFailed as failed:
        message = str(failed)
    assert message.startswith("live sync failed: published locally, but the upload of version")
    assert "NoSuchBucket" in message and "create the bucket" in message
    assert f"Readers of {url}/live/current.json still see nothing" in message
    assert "jofi-pipeline publish-remote --mode live" in message

    # Dagster shows a failed run whose materializations and checks were recorded before the failure.
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE
    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
    materialized = {e.asset_key.path[-1] for e in events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
    assert {"test_takers", "sync_runs", "scorecards"} <= materialized
    assert any(e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION for e in events)
    failure = next(e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "upload of version" in failure.step_failure_data.user_failure_data.description
    assert failure.step_failure_data.user_failure_data.metadata["remote_upload"].value.startswith("failed: ")
    logged = " ".join(str(e) for e in instance.all_logs(run.run_id))
    recorded = ModePaths(data, "live").remote_state.read_text()
    for text in (logged, recorded, message):
        assert secret not in text and sim.live_key not in text

    # The local publish stands, and `status` says the store is behind.
    failed_version = local_version(data, "live")
    assert local_rows(data, "live", "sync_runs") == 1
    status = status_text(data_dir=data)
    assert f"upload of {failed_version} FAILED" in status and "readers still see nothing" in status

    # Once the bucket exists, the next run uploads a complete version (the production test shows
    # Dagster's metadata for a successful upload).
    aws_env.client().create_bucket(Bucket=bucket)
    assert sync(sim, "live", data, publish_url=url).remote.ok
    pointer = aws_env.get_json(bucket, "jofi/live/current.json")
    assert pointer["version"] == local_version(data, "live") != failed_version
    assert f"current.json -> {pointer['version']}" in status_text(data_dir=data)
