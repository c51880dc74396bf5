"""The one Dagster instance the CLI, `dg dev` and `dagster dev` share.

`DAGSTER_HOME`, when set, wins: that folder's `dagster.yaml` configures the instance (production:
deploy/dagster.yaml). When it is unset, the project's instance is used: `dagster.yaml` in the
current directory (the project root ships one) configures it and keeps its storage in
`.dagster_home/` there (git-ignored). Dagster's own commands read that same file when
DAGSTER_HOME is unset (`dg dev` moves to the project root first; `dagster dev -w workspace.yaml`
and `dagster job …` are run from it), so a CLI sync and the UI see one history without anyone
exporting anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Dagster is imported when an instance is opened, not when the CLI starts.
    import dagster as dg

ENV_DAGSTER_HOME = "DAGSTER_HOME"
PROJECT_HOME = ".dagster_home"
CONFIG_FILE = "dagster.yaml"


def instance_home(cwd: Path | None = None) -> Path:
    """Where the instance keeps its storage: $DAGSTER_HOME, else ./.dagster_home (absolute)."""
    home = os.environ.get(ENV_DAGSTER_HOME)
    if home:
        return Path(home).expanduser().resolve()
    return ((cwd or Path.cwd()) / PROJECT_HOME).resolve()


def describe_instance(cwd: Path | None = None) -> str:
    """One line for a person: which instance and where its configuration comes from."""
    if os.environ.get(ENV_DAGSTER_HOME):
        return f"Dagster instance {instance_home(cwd)} (DAGSTER_HOME)"
    config = (cwd or Path.cwd()) / CONFIG_FILE
    source = f"configured by {config}" if config.exists() else "Dagster's defaults (no dagster.yaml here)"
    return f"Dagster instance {instance_home(cwd)} ({source})"


def open_instance(cwd: Path | None = None) -> dg.DagsterInstance:
    """The shared instance (close it, or use `with`); DAGSTER_HOME is created when missing."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    if os.environ.get(ENV_DAGSTER_HOME):
        instance_home(cwd).mkdir(parents=True, exist_ok=True)
        return DagsterInstance.get()
    base = cwd or Path.cwd()
    home = instance_home(base)
    home.mkdir(parents=True, exist_ok=True)
    # The same call Dagster makes for `dg dev` without DAGSTER_HOME, with our folder instead of a
    # temporary one: dagster.yaml here decides, and its relative paths resolve from here.
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(base)))
