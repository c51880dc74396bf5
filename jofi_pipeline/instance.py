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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Dagster is imported when an instance is opened, not when the CLI starts.
    import dagster as dg

ENV_DAGSTER_HOME = "DAGSTER_HOME"
PROJECT_HOME = ".dagster_home"
CONFIG_FILE = "dagster.yaml"
# Dagster's switch for writing a batch of events at once (DagsterInstance.handle_new_event reads it
# at every event): Dagster then hands the events it emits together to the event log storage in one
# `store_event_batch` call: the planned materializations and checks of a new run (~50 at once).
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000  # more than a run plans: each batch is written whole, when Dagster ends it


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


@contextmanager
def batched_events() -> Iterator[None]:
    """Within: Dagster writes the events it emits as one batch (the run's planned events) by one
    `store_event_batch` of the storage (the project's writes each batch in one transaction per
    file: dagster_storage.py) instead of one event at a time. What is stored is the same. A value
    already set in the environment is left as it is."""
    if EVENT_BATCH_SIZE_ENV in os.environ:
        yield
        return
    os.environ[EVENT_BATCH_SIZE_ENV] = str(EVENT_BATCH_SIZE)
    try:
        yield
    finally:
        os.environ.pop(EVENT_BATCH_SIZE_ENV, None)
