"""Dagster's alembic scripts, read once per process instead of once per database set up.

A new instance's databases (runs, the event log's index, a run shard's template, schedules) are
created and stamped by Dagster's own set-up, and every stamp or revision check builds a new
`ScriptDirectory` that loads Dagster's ~90 migration scripts again (~0.03 s of CPU each time,
five to eight times per new instance). The scripts of one installed Dagster do not change while
a process runs, so the first directory built for Dagster's script location is kept and handed to
every later caller; any other location (none in this project) is built as alembic does.

`install()` is called by the project's storage just before it hands a database to Dagster's
set-up (dagster_storage.py), so a process that only opens existing, stamped databases (a CLI sync)
never imports alembic for it (deferred.py).
"""

from __future__ import annotations

import threading
from typing import Any

DAGSTER_SCRIPTS = "dagster:_core/storage/alembic"  # dagster._core.storage.sql.ALEMBIC_SCRIPTS_LOCATION

_lock = threading.Lock()
_kept: dict[tuple, Any] = {}


def install() -> None:
    """Keep the first ScriptDirectory built for Dagster's scripts (idempotent)."""
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "keeps_dagsters_scripts", False):
        return
    build = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls: type, config: Any) -> Any:
        location = config.get_alembic_option("script_location")
        if cls is not ScriptDirectory or location != DAGSTER_SCRIPTS:
            return build(cls, config)
        key = (location, tuple(config.get_version_locations_list() or ()), config.get_alembic_boolean_option("sourceless"))
        with _lock:
            if key not in _kept:
                scripts = build(cls, config)
                scripts.get_heads()  # the revision map, read here under the lock, not by two threads at once
                _kept[key] = scripts
            return _kept[key]

    from_config.keeps_dagsters_scripts = True  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[assignment,method-assign]
