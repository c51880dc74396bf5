"""What an operator sees in Dagster: one instance, CLI syncs as runs of `jofi_sync`, lineage,
column schemas equal to the DuckDB comments, freshness that turns red on its own, refusals
that leave no failed run.

One real test-mode sync (simulator over HTTP, real DuckDB and Parquet, a real Dagster run in a
real sqlite instance) serves the module's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from jofi_pipeline.defs import freshness
from jofi_pipeline.defs.metadata import shown
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.tables import SOURCE_KEY, asset_key
from jofi_pipeline.entities import CAPPED_LISTS, DERIVED, ENTITIES
from jofi_pipeline.instance import PROJECT_HOME, instance_home, open_instance
from jofi_pipeline.runs import LOCATION_NAME, load_definitions, sync_mode
from jofi_pipeline.sync_refusal import SyncRefused
from jofi_pipeline.settings import ENV_BASE_URL, ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse
from jofi_pipeline.warehouse.lock import ModeLock
from jofi_pipeline.warehouse.published import RunSummary
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_LABEL = f"__repository__@{LOCATION_NAME}"
# DuckDB spells one type differently in duckdb_columns() than in the DDL.
DUCKDB_TYPE = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


@pytest.fixture(scope="module")
def synced(_session_simulator, tmp_path_factory):
    """A test-mode sync made the CLI's way, in its own instance: (instance, data dir, outcome)."""
    sim = _session_simulator
    root = tmp_path_factory.mktemp("operate")
    saved = {k: os.environ.get(k) for k in (ENV_BASE_URL, ENV_TEST_KEY, ENV_LIVE_KEY)}
    os.environ.update({ENV_BASE_URL: sim.base_url, ENV_TEST_KEY: sim.test_key})
    os.environ.pop(ENV_LIVE_KEY, None)
    (root / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "home"))
    try:
        outcome = sync_mode("test", data_dir=root / "data", instance=instance)
        yield instance, root / "data", outcome
    finally:
        instance.dispose()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---- one instance, the job's history ------------------------------------------------------------


def test_a_cli_sync_is_a_run_of_jofi_sync_with_the_code_locations_origin(synced):
    instance, _, outcome = synced
    # What the UI asks for on the job's Runs page: the job's name and the repository@location label.
    runs = instance.get_runs(dg.RunsFilter(job_name="jofi_sync", tags={".dagster/repository": REPOSITORY_LABEL}))
    assert [run.run_id for run in runs] == [outcome.run_id]
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.remote_job_origin is not None and run.remote_job_origin.job_name == "jofi_sync"
    assert run.remote_job_origin.location_name == LOCATION_NAME
    assert run.tags["dagster/partition"] == "test" and run.tags["jofi/mode"] == "test"
    assert run.tags["jofi/launched_by"] == "cli"
    # The names the origin is built from are the ones the UI loads the code location by.
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == LOCATION_NAME
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dg"]["project"]["code_location_name"] == LOCATION_NAME


def test_the_project_instance_lives_in_dot_dagster_home_unless_dagster_home_is_set(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME")
    assert instance_home() == tmp_path / PROJECT_HOME
    with open_instance() as instance:
        instance.add_run(dg.DagsterRun(job_name="jofi_sync", run_id="r1"))
        # The root dagster.yaml is the one in force: its queue limits one run per mode.
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert (tmp_path / PROJECT_HOME / "history" / "runs.db").exists()
    with open_instance() as again:  # the next command sees the same history
        assert again.get_run_by_id("r1") is not None

    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("DAGSTER_HOME", str(elsewhere))
    assert instance_home() == elsewhere
    with open_instance() as instance:
        assert instance.get_run_by_id("r1") is None
    assert elsewhere.is_dir()


def test_the_project_dagster_yaml_is_a_valid_instance_config():
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(PROJECT_ROOT))
    assert config["storage"]["custom"]["config"]["base_dir"] == PROJECT_HOME
    assert config["retention"]["sensor"]["purge_after_days"]["skipped"] == 7
    assert PROJECT_HOME + "/" in (PROJECT_ROOT / ".gitignore").read_text()


def test_a_refused_sync_creates_no_run(synced, tmp_path):
    instance, data_dir, _ = synced
    before = instance.get_runs_count()
    lock = ModeLock(ModePaths.of("test", data_dir).lock, "test")
    lock.acquire("someone-else")
    try:
        with pytest.raises(SyncRefused, match="being written by another sync"):
            sync_mode("test", data_dir=data_dir, instance=instance)
    finally:
        lock.release()
    assert instance.get_runs_count() == before
    failed = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert failed == []


# ---- lineage ------------------------------------------------------------------------------------


def _parents() -> dict[str, set[str]]:
    graph = load_definitions().resolve_asset_graph()
    return {key.path[-1]: {p.path[-1] for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}


def test_the_asset_graph_tells_the_story():
    parents = _parents()
    source = SOURCE_KEY.path[-1]
    assert set(parents) == {source, *TABLES, *(v.name for v in VIEWS)}
    assert parents[source] == set()
    for name in ENTITIES:  # every entity table is read from the API
        assert source in parents[name], name
    for spec in TABLES.values():  # every child table hangs off its parent, every history off its table
        if spec.parent:
            assert spec.parent in parents[spec.name], spec.name
        if spec.versions_of:
            assert parents[spec.name] == {spec.versions_of}, spec.name
    assert "scorecards" in parents["scorecard_scores"]
    assert "job_fit_reports" in parents["job_fit_occupations"]
    assert "test_takers" in parents["test_taker_assessments"]
    assert {"test_takers", "score_profiles"} <= parents["scorecards"]
    assert "test_takers" in parents["job_fit_reports"]
    assert set(DERIVED) <= parents["fetch_state"]
    assert parents["invitation_funnel"] == {"invitations", "test_takers", "test_taker_assessments", "career_navigation_profiles"}
    assert parents["scores_long"] == {"scorecard_scores", "scorecards", "score_profiles", "test_takers"}
    for view in VIEWS:  # what each view's SQL reads, as DuckDB parses it
        assert parents[view.name] == set(duckdb.get_table_names(view.sql)), view.name
    # Coverage comes last: it compares the capped lists with what the run held, nothing reads it.
    assert set(CAPPED_LISTS) | {"sync_runs"} <= parents["sync_coverage"]
    assert not any("sync_coverage" in p for p in parents.values())


def test_the_job_materializes_every_table_and_view_but_not_the_api():
    job = load_definitions().resolve_job_def("jofi_sync")
    keys = job.asset_layer.executable_asset_keys
    assert keys == {asset_key(n) for n in TABLES} | {asset_key(v.name) for v in VIEWS}
    assert SOURCE_KEY not in keys


# ---- asset pages: schemas, table names, previews ----------------------------------------------


def _published_columns(data_dir: Path) -> dict[str, list[tuple[str, str, str]]]:
    with duckdb.connect(str(data_dir / "test" / "jofi.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE schema_name = 'main' ORDER BY table_name, column_index"
        ).fetchall()
    columns: dict[str, list] = {}
    for table, column, sql_type, comment in rows:
        columns.setdefault(table, []).append((column, sql_type, comment))
    return columns


def test_column_schemas_are_the_duckdb_comments_of_the_published_database(synced):
    _, data_dir, _ = synced
    in_duckdb = _published_columns(data_dir)
    graph = load_definitions().resolve_asset_graph()
    for name in TABLES:
        metadata = graph.get(asset_key(name)).metadata
        schema = metadata["dagster/column_schema"]
        declared = [(c.name, DUCKDB_TYPE.get(c.type, c.type), c.description) for c in schema.columns]
        assert declared == in_duckdb[name], name
        assert metadata["dagster/table_name"] == f"jofi.main.{name}"


def test_each_materialization_shows_rows_and_a_preview_without_raw_json_links_or_people(synced):
    instance, data_dir, _ = synced
    in_duckdb = _published_columns(data_dir)
    with duckdb.connect(str(data_dir / "test" / "jofi.duckdb"), read_only=True) as con:
        people = {value for (value,) in con.execute(
            "SELECT email FROM users UNION SELECT email FROM test_takers UNION SELECT email FROM invitations"
        ).fetchall() if value}
    assert people
    for name in [*TABLES, *(v.name for v in VIEWS)]:
        event = instance.get_latest_materialization_event(asset_key(name))
        assert event is not None, name
        materialization = event.asset_materialization
        assert materialization.partition == "test"
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        with duckdb.connect(str(data_dir / "test" / "jofi.duckdb"), read_only=True) as con:
            assert metadata["dagster/row_count"] == con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        header = metadata["preview"].splitlines()[0]
        expected = [c for c, t, _ in in_duckdb[name] if shown(c, t)]
        assert header == "| " + " | ".join(expected) + " |", name
        assert "_raw" not in header and "_url" not in header
        assert not {"email", "first_name", "last_name", "phone", "created_by_user_email"} & set(header.strip("| ").split(" | "))
        assert "send_via_email" in header or "send_via_email" not in dict((c, t) for c, t, _ in in_duckdb[name])
        previewed = metadata["preview"]
        for person in people:
            assert person not in previewed, (name, "a participant's name or email is in the event log")
    # A view's columns are recorded from the file, with the comments publish gave them.
    funnel = instance.get_latest_materialization_event(asset_key("invitation_funnel")).asset_materialization
    recorded = [(c.name, c.type, c.description) for c in funnel.metadata["dagster/column_schema"].value.columns]
    assert recorded == in_duckdb["invitation_funnel"]
    assert any(description for _, _, description in recorded)


def test_parquet_fields_carry_the_column_descriptions(synced):
    _, data_dir, _ = synced
    for spec in TABLES.values():
        schema = pq.read_schema(data_dir / "test" / "parquet" / spec.name / "part-0.parquet")
        assert schema.metadata[b"description"].decode() == spec.comment
        for column in spec.all_columns:
            assert schema.field(column.name).metadata[b"description"].decode() == column.comment, (spec.name, column.name)
    # The data reads back as before (timestamps in UTC).
    table = pq.read_table(data_dir / "test" / "parquet" / "sync_runs" / "part-0.parquet")
    assert table.num_rows >= 1 and str(table.schema.field("started_at").type.tz) == "UTC"


def test_check_numbers_are_keyed_by_mode_so_each_plot_draws_one_mode(synced):
    instance, _, outcome = synced
    records = instance.get_records_for_run(outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    numbers = [
        key
        for record in records
        for key, value in record.event_log_entry.dagster_event.event_specific_data.metadata.items()
        if isinstance(value, (dg.IntMetadataValue, dg.FloatMetadataValue))
    ]
    assert "api_total_count (test)" in numbers and "age_hours (test)" in numbers
    assert all(key.endswith(" (test)") for key in numbers), numbers


# ---- freshness ----------------------------------------------------------------------------------


def _run(age: timedelta | None, now) -> RunSummary | None:
    return None if age is None else RunSummary("r", "succeeded", now - age, now - age, None)


@pytest.mark.parametrize(("mode", "severity"), [("live", dg.AssetCheckSeverity.ERROR), ("test", dg.AssetCheckSeverity.WARN)])
def test_freshness_fails_once_the_last_success_is_older_than_the_window(mode, severity):
    now = freshness.utc_now()
    fresh = freshness.verdict(mode, _run(freshness.FRESHNESS_WINDOW - timedelta(minutes=1), now), now)
    stale = freshness.verdict(mode, _run(freshness.FRESHNESS_WINDOW + timedelta(minutes=1), now), now)
    never = freshness.verdict(mode, None, now)
    assert fresh.passed and not stale.passed and not never.passed
    assert stale.severity == severity
    assert stale.metadata["age_hours"] == pytest.approx(26.02, abs=0.01)
    assert f"sync --mode {mode}" in stale.what_to_do
    # One check for both modes: a stale live is red even when test is fresh; a stale test alone is amber.
    other = "test" if mode == "live" else "live"
    combined = freshness.Freshness((stale, freshness.verdict(other, _run(timedelta(hours=1), now), now)))
    assert not combined.passed and combined.severity == severity
    assert combined.metadata[f"age_hours ({mode})"] == stale.metadata["age_hours"]
    assert combined.metadata[f"last_success ({other})"] != combined.metadata[f"last_success ({mode})"]


def test_the_freshness_sensor_turns_red_without_any_run(synced, monkeypatch):
    instance, data_dir, _ = synced
    defs = load_definitions()
    sensor = defs.resolve_sensor_def("jofi_freshness")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    resources = {"jofi": JofiSyncResource(data_dir=str(data_dir))}
    with PublishedWarehouse("test", data_dir).open() as reader:
        finished = reader.last_published_run().finished_at

    def tick(now, cursor=None):
        monkeypatch.setattr(freshness, "utc_now", lambda: now)
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return sensor(context)

    runs_before = instance.get_runs_count()
    first = tick(finished + timedelta(hours=1))
    (evaluation,) = first.asset_events
    assert evaluation.partition is None and evaluation.passed
    assert isinstance(tick(finished + timedelta(hours=2), first.cursor), dg.SkipReason)  # nothing changed

    late = tick(finished + freshness.FRESHNESS_WINDOW + timedelta(minutes=5), first.cursor)
    (evaluation,) = late.asset_events
    assert not evaluation.passed and evaluation.check_name == "freshness"
    assert evaluation.asset_key == asset_key("sync_runs") and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert json.loads(late.cursor)["test"][0] is False
    # A stale test warehouse is a warning, said once; a stale live one is said on every tick.
    assert isinstance(tick(finished + freshness.FRESHNESS_WINDOW + timedelta(minutes=10), late.cursor), dg.SkipReason)
    # Recorded the way the daemon records a sensor's events, again and again (a runless evaluation
    # of a partitioned check could be stored once only): the check's latest result is the failure.
    key = dg.AssetCheckKey(asset_key("sync_runs"), "freshness")
    for _ in range(2):
        instance.report_runless_asset_event(evaluation)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.status.value == "FAILED" and record.run_id == ""
    assert instance.get_runs_count() == runs_before  # no run was started for it


# ---- pictures -----------------------------------------------------------------------------------


def test_the_report_is_one_self_contained_html_file_of_one_mode(synced, tmp_path):
    import re

    from typer.testing import CliRunner

    from jofi_pipeline.cli import app

    _, data_dir, _ = synced
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--mode", "test", "--data-dir", str(data_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    # Nothing to fetch: no script, stylesheet link, image URL or CDN (the SVG namespace is a name, not a fetch).
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert html.count("<svg") >= 4  # funnel, funnel by week, coverage, at least one score distribution
    with duckdb.connect(str(data_dir / "test" / "jofi.duckdb"), read_only=True) as con:
        invited = con.execute("SELECT sum(invited)::BIGINT FROM invitation_funnel").fetchone()[0]
        (total,) = con.execute("SELECT api_total_count FROM sync_coverage WHERE entity = 'test_takers'").fetchone()
    assert f"invited: {invited}<" in html.replace("</title>", "<")
    assert f"test_takers: API total: {total}<" in html.replace("</title>", "<")
    assert "(test" in html and "(live" not in html

    missing = CliRunner().invoke(app, ["report", "--mode", "live", "--data-dir", str(data_dir), "--out", str(out)])
    assert missing.exit_code == 1 and "error: no published live warehouse" in missing.output


def test_a_stale_live_warehouse_is_reported_on_every_tick(monkeypatch):
    """So a test evaluation in between never leaves the check's summary green while live is red."""
    monkeypatch.setattr(freshness, "evaluate_modes", lambda _dir, now: freshness.Freshness((
        freshness.verdict("live", _run(freshness.FRESHNESS_WINDOW + timedelta(hours=1), now), now),
        freshness.verdict("test", _run(timedelta(hours=1), now), now))))
    sensor = load_definitions().resolve_sensor_def("jofi_freshness")
    resources = {"jofi": JofiSyncResource()}
    first = sensor(dg.build_sensor_context(resources=resources))
    second = sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    for result in (first, second):
        (evaluation,) = result.asset_events
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.metadata["age_hours (live)"].value == pytest.approx(27.0, abs=0.01)
