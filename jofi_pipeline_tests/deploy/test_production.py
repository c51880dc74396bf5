"""The production instance for real: deploy/dagster.yaml on a PostgreSQL this suite starts, the
documented `dagster job execute` command, and Dagster's own queue (a daemon, a code server and
run workers, started with the commands of deploy/docker-compose.yaml) holding a second live run
while a test run goes alongside."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from dagster._cli import cli as dagster_cli

from jofi_pipeline.defs.automation import MAX_RUNTIME_SECONDS
from jofi_pipeline.warehouse.paths import CURRENT_LINK
from jofi_pipeline.warehouse.publish import VERSION_PREFIX
from jofi_pipeline_tests.deploy.services import BIN, REPO, Process, free_port, wait_for
from jofi_pipeline_tests.e2e.helpers import sync

DEPLOY = REPO / "deploy"
PARTITION = "dagster/partition"
IN_FLIGHT = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


@dataclass
class Production:
    home: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    workspace: Path        # deploy/workspace.yaml, pointed at the local code server
    code_server: Process   # as compose starts it: runs execute in its subprocesses
    daemon: Process        # as compose starts it: the run queue, schedules, sensors, monitoring
    migrated: str          # what compose's one-shot `migrate` service printed, run before the others
    set_up: tuple[int, set[str]]  # right after it, before anything else opened the database: revisions, tables


@pytest.fixture(scope="module")
def production(postgres, small_world, tmp_path_factory) -> Iterator[Production]:
    """A DAGSTER_HOME holding deploy/dagster.yaml verbatim, on its own Postgres database, set up by
    the compose file's `migrate` service, then its code server and daemon started (they boot while
    the first test runs)."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1",
        "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": postgres.create_database(),
        "JOFI_DATA_DIR": str(tmp_path_factory.mktemp("data")), **small_world.env(),
    }
    port = free_port()
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=port)
    workspace_file = home / "workspace.yaml"
    workspace_file.write_text(yaml.safe_dump(workspace))
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())["services"]

    def argv(service: str) -> list[str]:
        """The compose command, with this machine's workspace file, host and port."""
        swap = {"/app/workspace.yaml": str(workspace_file), "0.0.0.0": "127.0.0.1", "4000": str(port)}
        command = [swap.get(arg, arg) for arg in compose[service]["command"]]
        return [str(BIN / command[0]), *command[1:]]

    # compose's order: the one-shot set-up (or migration) of the database, then the services
    migrate = subprocess.run(argv("migrate"), env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    set_up = _schema_of(env["DAGSTER_PG_URL"])  # before this process or a service opens it (they would set it up too)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])
        instance = dg.DagsterInstance.from_config(str(home))
        # This process only watches, polling the run table for a minute: keep one pooled connection,
        # as the webserver does (its default settings), instead of a new Postgres backend per query.
        instance.optimize_for_webserver(statement_timeout=15_000, pool_recycle=3600, max_overflow=20)
        code_server = Process(argv("code-server"), env, home / "code-server.log")
        daemon = Process(argv("daemon"), env, home / "daemon.log")
        try:
            yield Production(home, env, instance, workspace_file, code_server, daemon, migrate.stdout + migrate.stderr, set_up)
        finally:
            daemon.stop()
            code_server.stop()
            instance.dispose()


# The deployment contract of issue 15, word for word (outside tests run exactly this).
CONTRACT_COMMAND = """dagster job execute -m jofi_pipeline.definitions -j jofi_sync --tags '{"dagster/partition": "live"}'"""


def _schema_of(url: str) -> tuple[int, set[str]]:
    """How many schema revisions are stamped, and which tables exist (none of a new database)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as con:
            tables = {r[0] for r in con.execute(sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
            stamped = con.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar() if "alembic_version" in tables else 0
    finally:
        engine.dispose()
    return stamped, tables


def test_compose_migrate_step_sets_up_the_database_before_any_service_opens_it(production):
    """On a new database `dagster instance migrate` (compose's `migrate` service) makes every table
    and stamps the schema's revision, so the services that start after it only open it."""
    revisions, tables = production.set_up
    assert revisions == 1
    assert {"runs", "event_logs", "jobs", "instance_info"} <= tables, sorted(tables)
    assert "Updating run storage" in production.migrated, production.migrated[-1500:]


def test_the_contract_command_runs_a_live_sync_recorded_in_postgres_and_published(
    production, s3, small_world, tmp_path, monkeypatch
):
    instance = production.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

    bucket = s3.new_bucket()
    url = f"s3://{bucket}/jofi"
    data = Path(production.env["JOFI_DATA_DIR"])
    # The test prefix already holds a version: a live run must not touch a byte of it.
    for name, value in {**small_world.env(), **s3.env()}.items():
        monkeypatch.setenv(name, value)
    assert sync(small_world, "test", data, publish_url=url).remote.ok
    test_before = s3.objects(bucket, "jofi/test/")
    assert test_before

    env = {**production.env, **s3.env(), "JOFI_PUBLISH_URL": url}
    assert "dagster job execute" in (REPO / "README.md").read_text(), "the README names the contract command"
    done = subprocess.run(["bash", "-c", CONTRACT_COMMAND], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    (run,) = instance.get_runs(filters=dg.RunsFilter(job_name="jofi_sync", tags={PARTITION: "live"}))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    events = instance.all_logs(run.run_id)
    materialized = {
        e.dagster_event.asset_key.path[-1]: e.dagster_event.partition
        for e in events if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized["test_takers"] == materialized["sync_runs"] == "live"
    last = instance.get_latest_materialization_event(dg.AssetKey(["jofi", "sync_runs"]))
    assert last.run_id == run.run_id
    assert last.asset_materialization.metadata["remote_upload"].value == "uploaded"
    assert last.asset_materialization.metadata["remote_url"].value == f"{url}/live/"
    logged = json.dumps([e.user_message for e in events] + [str(e.dagster_event) for e in events if e.dagster_event])
    assert small_world.live_key not in logged and small_world.test_key not in logged

    live_version = (data / "live" / CURRENT_LINK).readlink().name.removeprefix(VERSION_PREFIX)
    pointer = s3.get_json(bucket, "jofi/live/current.json")
    assert pointer["version"] == live_version and pointer["mode"] == "live"
    assert last.asset_materialization.metadata["remote_version"].value == live_version
    assert s3.objects(bucket, "jofi/test/") == test_before, "a live run published nothing under the test prefix"
    assert all(key.startswith(("jofi/live/", "jofi/test/")) for key in s3.objects(bucket))


def test_the_queue_runs_one_live_run_at_a_time_while_test_runs_alongside(production):
    """Three runs submitted to Dagster's queue; the daemon starts them under the dagster.yaml limit."""
    instance, code_server, daemon = production.instance, production.code_server, production.daemon
    port = yaml.safe_load(production.workspace.read_text())["load_from"][0]["grpc_server"]["port"]
    wait_for(lambda: _listening(port) or not code_server.running(), 120, "the code server")
    assert code_server.running(), code_server.text()[-3000:]

    # `dagster job launch` puts each run in the queue (its own CLI code, run in this process).
    batch = uuid.uuid4().hex[:8]
    runs = {name: str(uuid.uuid4()) for name in ("live-a", "test", "live-b")}
    cli = CliRunner()
    for name, run_id in runs.items():
        tags = json.dumps({PARTITION: name.split("-")[0], "jofi/batch": batch})
        result = cli.invoke(
            dagster_cli, ["job", "launch", "-w", str(production.workspace), "-j", "jofi_sync", "--run-id", run_id,
                          "--tags", tags], env=production.env, catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output

    seen: list[dict[str, dg.DagsterRunStatus]] = []

    names = {run_id: name for name, run_id in runs.items()}

    def all_done():
        # One query per look (not one per run): this polls every 0.25 s for the whole test.
        statuses = {names[r.run_id]: r.status for r in instance.get_runs(filters=dg.RunsFilter(run_ids=list(names)))}
        assert set(statuses) == set(runs), statuses
        seen.append(statuses)
        assert daemon.running(), daemon.text()[-3000:]
        return all(s in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for s in statuses.values())

    wait_for(all_done, 240, "the three queued runs to finish", interval=0.25)

    records = {name: instance.get_run_record_by_id(run_id) for name, run_id in runs.items()}
    assert {name: r.dagster_run.status for name, r in records.items()} == dict.fromkeys(runs, dg.DagsterRunStatus.SUCCESS)
    first, second = sorted((records["live-a"], records["live-b"]), key=lambda r: r.start_time)
    test = records["test"]
    # The two live runs never overlapped: the second started only after the first ended...
    assert first.end_time <= second.start_time, (first.end_time, second.start_time)
    # ...while the test run ran alongside the first one.
    assert test.start_time < first.end_time and first.start_time < test.end_time
    # And it was Dagster's queue that held the second live run back (not the warehouse's file lock).
    held = [s for s in seen if dg.DagsterRunStatus.QUEUED in (s["live-a"], s["live-b"])
            and (s["live-a"] in IN_FLIGHT or s["live-b"] in IN_FLIGHT)]
    assert held, seen
    assert any(s["test"] in IN_FLIGHT for s in held), "test ran while a live run waited in the queue"
    for r in records.values():
        assert r.dagster_run.tags["jofi/batch"] == batch
        # Run monitoring (on in dagster.yaml) terminates a run past this, freeing its mode's slot.
        assert float(r.dagster_run.tags["dagster/max_runtime"]) == MAX_RUNTIME_SECONDS


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
