"""A CLI sync's process opens the instance without alembic or the daemons (jofi_pipeline/deferred.py):
each is loaded when something uses it, and then works as before. Fresh processes: this one has
both imported already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jofi_pipeline.deferred import Deferred
from jofi_pipeline.instance import CONFIG_FILE, open_instance

# The console script's start (entry.run: collector, then deferred.install), then the project's
# instance opened from `cwd` (its dagster.yaml) and a run listed: what a CLI sync does before its run.
OPEN_AS_THE_CLI = """
import json, sys
from jofi_pipeline import deferred
deferred.install()
from pathlib import Path
from jofi_pipeline.instance import open_instance
import dagster._core.storage.sql as sql
with open_instance(Path(sys.argv[1])) as instance:
    seen = {"runs": len(instance.get_runs()), "stand_in": type(sql.Config).__name__,
            "alembic": sorted(m for m in sys.modules if m == "alembic" or m.startswith("alembic.")),
            "daemon": sorted(m for m in sys.modules if m.startswith("dagster._daemon"))}
    from dagster._daemon import DagsterDaemonController  # the package's own names, when asked
    seen["controller"] = DagsterDaemonController.__module__
    config = getattr(sql.Config, "resolve", lambda: sql.Config)()
    seen["config_now"] = config.__module__ + "." + config.__name__
print(json.dumps(seen))
"""


def _open_as_the_cli(project) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run([sys.executable, "-c", OPEN_AS_THE_CLI, str(project)], env={**env, "DAGSTER_DISABLE_TELEMETRY": "1"},
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / CONFIG_FILE).write_text((Path(__file__).resolve().parents[2] / CONFIG_FILE).read_text())
    return project


@pytest.mark.e2e
def test_an_existing_instance_opens_without_alembic_or_the_daemons(tmp_path, monkeypatch):
    project = _project(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(project)  # dagster.yaml's relative paths resolve from the working directory
    open_instance(project).dispose()  # made and stamped here, as an earlier sync or `dg dev` did

    seen = _open_as_the_cli(project)

    assert seen["runs"] == 0
    assert seen["stand_in"] == "Deferred"  # Dagster's SQL storage module holds stand-ins
    assert seen["alembic"] == []  # and nothing called them: alembic never imported
    assert seen["daemon"] == ["dagster._daemon", "dagster._daemon.types"]  # the heartbeat record only
    assert seen["controller"] == "dagster._daemon.controller"  # asked for: the package's __init__ ran
    assert seen["config_now"] == "alembic.config.Config"


@pytest.mark.e2e
def test_a_new_instance_is_created_and_stamped_through_the_stand_ins(tmp_path, monkeypatch):
    project = _project(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(project)

    seen = _open_as_the_cli(project)  # nothing there yet: Dagster's own set-up creates and stamps

    assert seen["stand_in"] == "Deferred"
    assert "alembic.command" in seen["alembic"]  # the stand-ins imported it when Dagster stamped
    with open_instance(project) as instance:  # Dagster's own check of the stamps passes here
        assert instance.get_runs() == []
        stamped = [instance.run_storage, instance.event_log_storage, instance.schedule_storage]
        assert all(storage.alembic_version()[0] is not None for storage in stamped)  # type: ignore[union-attr]


def test_a_deferred_name_is_imported_at_its_first_use(tmp_path, monkeypatch):
    (tmp_path / "deferred_probe.py").write_text("import sys\nclass Thing:\n    size = 3\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "deferred_probe", raising=False)
    double, thing = Deferred("deferred_probe", "double"), Deferred("deferred_probe", "Thing")

    assert "deferred_probe" not in sys.modules and "not imported yet" in repr(double)
    assert double(21) == 42
    assert "deferred_probe" in sys.modules and "imported" in repr(double)
    assert thing.size == 3 and thing.resolve() is sys.modules["deferred_probe"].Thing


def test_the_stand_ins_are_the_alembic_names_dagsters_sql_module_imports():
    """ALEMBIC_NAMES says what Dagster's SQL storage module imports from alembic; read from its source."""
    import ast
    import importlib.util

    from jofi_pipeline.deferred import ALEMBIC_NAMES, SQL_MODULE

    tree = ast.parse(Path(importlib.util.find_spec(SQL_MODULE).origin).read_text())
    imported: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "alembic":
            imported[node.module] = imported.get(node.module, ()) + tuple(a.name for a in node.names)
        assert not (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "alembic" for a in node.names))
    assert {m: sorted(n) for m, n in imported.items()} == {m: sorted(n) for m, n in ALEMBIC_NAMES.items()}


def test_a_stand_in_module_defers_a_name_it_was_not_told_of(tmp_path, monkeypatch):
    from jofi_pipeline.deferred import stand_in_module

    (tmp_path / "deferred_probe2.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "deferred_probe2", raising=False)
    stand_in = stand_in_module("deferred_probe2")
    triple = stand_in.triple  # what `from deferred_probe2 import triple` asks of the stand-in
    assert "deferred_probe2" not in sys.modules
    assert triple(5) == 15
    with pytest.raises(AttributeError):
        stand_in.__path__  # the import system's probes get the usual answer


def _package_initialised_on_first_use(tmp_path, init: str):
    import importlib.util

    from jofi_pipeline.deferred import init_on_first_use

    folder = tmp_path / "probe_package"
    folder.mkdir()
    (folder / "__init__.py").write_text(init)
    spec = importlib.util.spec_from_file_location("probe_package", folder / "__init__.py", submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    init_on_first_use(spec.loader, package)
    return package


def test_threads_asking_a_deferred_package_at_once_all_get_its_names(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    package = _package_initialised_on_first_use(tmp_path, "import time\ntime.sleep(0.2)\nclass Controller:\n    pass\nRUNS = []\nRUNS.append(1)\n")
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: package.Controller, range(4)))
    assert len(set(got)) == 1 and package.RUNS == [1], "every thread got the one class; __init__ ran once"
    with pytest.raises(AttributeError):
        package.Missing


def test_a_deferred_package_whose_init_fails_says_why_and_runs_it_again_when_asked_again(tmp_path):
    marker = tmp_path / "fail-once"
    marker.write_text("")
    package = _package_initialised_on_first_use(
        tmp_path, f"import pathlib\np = pathlib.Path({str(marker)!r})\nif p.exists():\n    p.unlink()\n    raise OSError('no daemon today')\nNAME = 1\n")
    with pytest.raises(OSError, match="no daemon today"):
        package.NAME
    assert package.NAME == 1
