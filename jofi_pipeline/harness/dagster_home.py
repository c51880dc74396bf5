"""A Dagster home for a `dagster dev` started by a test or a benchmark: the project's dagster.yaml
with every folder it names moved into that home (runs, event logs, compute logs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from jofi_pipeline.dagster_compute_logs import compute_logs_config
from jofi_pipeline.dagster_storage import storage_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_instance_config(home: Path) -> dict:
    """The project's dagster.yaml, with every folder it names moved into `home`."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["local_artifact_storage"]["config"]["base_dir"] = str(home)
    return {**config, **storage_config(str(home)), **compute_logs_config(str(home / "storage"))}


def write_home(home: Path) -> Path:
    """`home` made, holding that dagster.yaml; returns it (for DAGSTER_HOME)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(project_instance_config(home)))
    return home
