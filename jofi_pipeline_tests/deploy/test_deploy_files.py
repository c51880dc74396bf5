"""The production files, checked with what this machine has (no Docker, no Kubernetes): the
instance file passes Dagster's own schema and its queue limit does what we claim with Dagster's
own counter; compose, Helm values and the Dockerfile agree with it and with the code."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster._utils.tags import TagConcurrencyLimitsCounter

from jofi_pipeline_tests.deploy.services import REPO

DEPLOY = REPO / "deploy"
PARTITION_TAG = "dagster/partition"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.fixture(scope="module")
def instance_config(tmp_path_factory) -> dict:
    """deploy/dagster.yaml as Dagster itself loads and validates a DAGSTER_HOME."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return dict(config)


def test_dagster_yaml_passes_dagsters_own_schema_with_postgres_from_env(instance_config):
    assert instance_config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["run_launcher"]["class"] == "DefaultRunLauncher"
    assert instance_config["retention"]["sensor"]["purge_after_days"]["skipped"] == 7


def test_dagster_rejects_a_broken_copy_so_the_schema_check_can_fail(tmp_path):
    broken = load("dagster.yaml")
    broken["concurrency"]["runs"]["tag_concurrency_limits"][0]["value"] = {"applyLimitPerUniqueValue": "yes"}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(Exception, match="applyLimitPerUniqueValue"):
        dagster_instance_config(str(tmp_path))


def _run(mode: str | None, run_id: str) -> DagsterRun:
    tags = {PARTITION_TAG: mode} if mode else {}
    return DagsterRun(job_name="jofi_sync", run_id=run_id, tags=tags, status=DagsterRunStatus.NOT_STARTED)


def test_the_limit_admits_one_run_per_mode_in_dagsters_own_counter(instance_config):
    """Dagster's queue asks this counter before launching each queued run."""
    limits = instance_config["concurrency"]["runs"]["tag_concurrency_limits"]
    in_progress = [_run("live", "running-live")]
    counter = TagConcurrencyLimitsCounter(limits, in_progress)
    assert counter.is_blocked(_run("live", "second-live")), "a second live run must wait"
    assert not counter.is_blocked(_run("test", "a-test")), "a test run goes alongside"
    counter.update_counters_with_launched_item(_run("test", "a-test"))
    assert counter.is_blocked(_run("test", "second-test"))
    assert not counter.is_blocked(_run(None, "unpartitioned")), "other jobs are not limited by mode"
    # The same limit without applyLimitPerUniqueValue would serialise live and test too.
    plain = TagConcurrencyLimitsCounter([{"key": PARTITION_TAG, "limit": 1}], in_progress)
    assert plain.is_blocked(_run("test", "a-test"))


def test_helm_values_say_what_dagster_yaml_says():
    instance, helm = load("dagster.yaml"), load("helm-values.yaml")
    runs = instance["concurrency"]["runs"]
    helm_runs = helm["concurrency"]["runs"]
    assert helm["concurrency"]["enabled"] is True
    assert helm_runs["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert [
        {"key": limit["key"], "value": limit["value"], "limit": limit["limit"]} for limit in helm_runs["tagConcurrencyLimits"]
    ] == runs["tag_concurrency_limits"]
    daemon = helm["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    assert (daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["dequeueIntervalSeconds"]
            == instance["run_coordinator"]["config"]["dequeue_interval_seconds"])
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    assert daemon["runMonitoring"]["pollIntervalSeconds"] == instance["run_monitoring"]["poll_interval_seconds"]
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert helm["retention"]["schedule"]["purgeAfterDays"] == instance["retention"]["schedule"]["purge_after_days"]
    assert helm["retention"]["sensor"]["purgeAfterDays"] == instance["retention"]["sensor"]["purge_after_days"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False


def code_env_names() -> set[str]:
    """Every JOFI_* variable the deployed code reads (the simulator is not deployed)."""
    names: set[str] = set()
    for path in (REPO / "jofi_pipeline").rglob("*.py"):
        if "simulator" not in path.parts:
            names |= set(re.findall(r'"(JOFI_[A-Z_]+)"', path.read_text()))
    return names


def test_compose_and_helm_pass_every_variable_the_code_reads():
    names = code_env_names()
    assert {"JOFI_DATA_DIR", "JOFI_LIVE_API_KEY", "JOFI_PUBLISH_URL", "JOFI_PUBLISH_KEEP"} <= names
    compose = load("docker-compose.yaml")["services"]
    code_server = compose["code-server"]["environment"]
    passed = set(code_server) | set(compose["webhooks"]["environment"])
    assert names <= passed, names - passed
    assert compose["webhooks"]["environment"]["JOFI_DATA_DIR"] == code_server["JOFI_DATA_DIR"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"} <= set(code_server)
    for service in ("code-server", "webserver", "daemon"):
        assert compose[service]["environment"]["DAGSTER_PG_URL"].startswith("postgresql://"), service
    assert code_server["JOFI_DATA_DIR"] == "/data"
    assert "jofi-data:/data" in compose["code-server"]["volumes"]

    deployment = load("helm-values.yaml")["dagster-user-deployments"]["deployments"][0]
    helm_env = {item["name"] for item in deployment["env"]}
    secret_text = (DEPLOY / "helm-values.yaml").read_text()
    for name in names:
        # Keys and secrets come from the `jofi-pipeline-env` secret the header lists; the rest is plain env.
        assert name in helm_env or (name.endswith(("_KEY", "_SECRET")) and name in secret_text), name
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run pods need the same env and volume"
    mount = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert mount["jofi-data"] == dict((e["name"], e["value"]) for e in deployment["env"])["JOFI_DATA_DIR"] == "/data"


def test_one_image_one_code_location_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    compose = load("docker-compose.yaml")["services"]
    deployment = load("helm-values.yaml")["dagster-user-deployments"]["deployments"][0]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    assert image == f"jofi-pipeline:{project['version']}"
    for service in ("code-server", "webserver", "daemon", "webhooks"):
        assert compose[service]["image"] == image, service
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert compose["code-server"]["command"] == cmd
    assert cmd[:3] == ["dagster", "api", "grpc"] and cmd[3:] == ["--host", "0.0.0.0", "--port", "4000", *deployment["dagsterApiGrpcArgs"]]
    workspace = load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert (workspace["host"], workspace["port"], workspace["location_name"]) == ("code-server", 4000, "jofi_pipeline")
    assert cmd[-1] == workspace["location_name"] == deployment["dagsterApiGrpcArgs"][-1]
    for service in ("webserver", "daemon"):
        assert compose[service]["command"][-1] == "/app/workspace.yaml"


def test_dockerfile_installs_the_lock_and_runs_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert re.search(r"uv sync --frozen --no-dev --no-install-project", dockerfile)
    assert re.search(r"uv sync --frozen --no-dev --no-editable", dockerfile)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml" in dockerfile
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in dockerfile
    python = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.M).group(1)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={python}" or python >= requires.removeprefix(">=")


def test_every_dagster_service_waits_for_the_one_that_sets_up_and_migrates_the_database():
    """Dagster's services each set up its tables on a new database when they start: started together,
    some failed. One `dagster instance migrate` goes first (and after an upgrade, migrates)."""
    compose = load("docker-compose.yaml")["services"]
    migrate = compose["migrate"]
    assert migrate["command"] == ["dagster", "instance", "migrate"]
    assert migrate["restart"] == "no", "a one-shot: restarted, it would run for ever"
    assert migrate["image"] == compose["code-server"]["image"], "the image whose Dagster version the schema must match"
    assert migrate["environment"]["DAGSTER_PG_URL"] == compose["daemon"]["environment"]["DAGSTER_PG_URL"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    on_the_database = [name for name, service in compose.items() if "DAGSTER_PG_URL" in service.get("environment", {})]
    assert sorted(on_the_database) == ["code-server", "daemon", "migrate", "webserver"]
    for name in on_the_database:
        if name != "migrate":
            assert compose[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
