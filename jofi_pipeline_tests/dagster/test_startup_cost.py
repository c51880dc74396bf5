"""What a CLI sync no longer pays for Dagster (docs/notes/issue-13.md, "Follow-up 3" and "4"): no
garbage collector walks over what start-up loads, in the console script's own process only; the
job built without the component catalogue; a published file's columns read in one query; the
simulator loaded only for `simulate`; a view computed once for its page; the console script's
process ends without the interpreter's teardown.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jofi_pipeline.runs import JOB_NAME, load_definitions, sync_job
from jofi_pipeline.warehouse import readonly
from jofi_pipeline.warehouse.published import PublishedReader
from jofi_pipeline_tests.heap import nothing_frozen

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The console script's path (jofi_pipeline.entry), with spies where the sync loads and where its
# run would start; the run is stopped there (nothing in this test needs a simulator).
SPIED_SYNC = """
import atexit, gc, json, sys
from jofi_pipeline import entry, instance, runs

seen = {}
kept = []
real_open = runs.open_instance

def spy_open(*args, **kwargs):
    seen["collecting_while_loading"] = gc.isenabled()
    return real_open(*args, **kwargs)

def spy_run(*args, **kwargs):
    seen["collecting_in_the_run"] = gc.isenabled()
    seen["frozen_at_the_run"] = gc.get_freeze_count()
    seen["walked_at_the_run"] = len(gc.get_objects())
    seen["storage_stand_ins"] = type(sys.modules["dagster._core.storage.sql"].Config).__name__  # deferred.py
    kept.extend([] for _ in range(5_000))  # as a run leaves objects alive until the end
    raise runs.SyncJobFailed("stopped by the test")

runs.open_instance = spy_open
runs.run_job_here = spy_run
atexit.register(lambda: print(json.dumps({**seen, "walked_at_exit": len(gc.get_objects())})))
sys.argv = ["jofi-pipeline", "sync", "--mode", "test", "--data-dir", sys.argv[1]]
entry.run()
"""


@pytest.mark.e2e
def test_the_console_script_skips_collections_over_start_up_and_exit_but_collects_in_the_run(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "DAGSTER_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-c", SPIED_SYNC, str(tmp_path / "data")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "stopped by the test" in done.stderr, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["collecting_while_loading"] is False  # imports, definitions, the instance
    assert seen["collecting_in_the_run"] is True  # the run's own garbage is collected as before
    assert seen["frozen_at_the_run"] > 100_000  # what start-up loaded: never walked again
    assert seen["walked_at_the_run"] < seen["frozen_at_the_run"] / 10
    assert seen["walked_at_exit"] < 1_000  # the interpreter's last walks find (next to) nothing to walk
    assert seen["storage_stand_ins"] == "Deferred"  # alembic imported on use only (test_deferred_imports.py)


# The console script's end (entry.finish): an object that only the interpreter's teardown of the
# modules frees (held by a module) says so when it is freed; the atexit handlers still run and what
# they print still arrives.
ENDING = """
import atexit, os, sys, threading, time, types
from jofi_pipeline import entry

class FreedAtTeardown:
    def __del__(self, write=os.write):
        write(2, b"torn down\\n")

witness = types.ModuleType("teardown_witness")
witness.kept = FreedAtTeardown()
sys.modules[witness.__name__] = witness
del witness
atexit.register(lambda: print("atexit handlers ran"))
if os.environ.get("A_THREAD_STILL_WORKING"):  # still working when the command is done
    done, leave = threading.Event(), entry.leave
    threading.Thread(target=lambda: (done.wait(), time.sleep(0.3), print("the thread finished"))).start()
    entry.leave = lambda code: (done.set(), leave(code))
sys.argv = ["jofi-pipeline", *sys.argv[1:]]
entry.run()
"""


@pytest.mark.e2e  # a process of its own: its end is what is tested
@pytest.mark.parametrize(("args", "status"), [(["--help"], 0), (["sync", "--mode", "neither"], 2)])
def test_the_console_script_ends_with_its_status_and_output_but_without_the_teardown(tmp_path, args, status):
    done = subprocess.run([sys.executable, "-c", ENDING, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == status, done.stderr
    assert ("Usage:" in done.stdout) if status == 0 else ("error:" in done.stderr)  # the command's output, flushed
    assert done.stdout.rstrip().endswith("atexit handlers ran")
    assert "torn down" not in done.stderr  # the ~2,000 modules of a sync are not freed one by one


@pytest.mark.e2e
def test_the_console_script_waits_for_a_thread_still_working_as_the_interpreter_does(tmp_path):
    env = {**os.environ, "A_THREAD_STILL_WORKING": "1"}
    done = subprocess.run([sys.executable, "-c", ENDING, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "the thread finished" in done.stdout and "atexit handlers ran" in done.stdout


def test_the_cli_called_in_a_longer_lived_process_leaves_its_collector_alone(tmp_path, monkeypatch, capsys):
    from jofi_pipeline_tests.errors.cli import invoke

    with nothing_frozen():
        frozen = gc.get_freeze_count()
        result = invoke(["sql", "SELECT 1", "--data-dir", str(tmp_path)], {}, monkeypatch, capsys)
        assert result.returncode == 1  # nothing published there: one error line, the process goes on
        assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_sync_job_is_the_code_locations_job_without_the_component_catalogue(monkeypatch):
    from dagster.components.core import defs_module

    expected = load_definitions().resolve_job_def(JOB_NAME)

    def no_catalogue(*_args, **_kwargs):
        raise AssertionError("the component catalogue was built")

    sync_job.cache_clear()
    monkeypatch.setattr(defs_module, "get_library_json_enriched_defs", no_catalogue, raising=False)
    import dagster.components.core.load_defs as load_defs

    monkeypatch.setattr(load_defs, "get_library_json_enriched_defs", no_catalogue)
    try:
        job = sync_job()
    finally:
        sync_job.cache_clear()
    assert isinstance(job, dg.JobDefinition)
    assert job.get_job_snapshot_id() == expected.get_job_snapshot_id()


def test_the_sync_jobs_component_tree_is_the_projects_without_reading_pyproject(monkeypatch):
    """`runs.component_tree()` holds what `ComponentTree.for_project` finds in pyproject.toml
    ([tool.dg.project]), and building the job reads no project file for it."""
    from dagster.components.core import component_tree as tree_module

    from jofi_pipeline import definitions, runs

    found = dg.ComponentTree.for_project(path_within_project=Path(definitions.__file__).parent)
    ours = runs.component_tree()
    assert (ours.defs_module, ours.project_root, ours.code_location_name) == \
        (found.defs_module, found.project_root, found.code_location_name)

    def read(*_args, **_kwargs):
        raise AssertionError("a project file was read to find the defs folder")

    monkeypatch.setattr(tree_module, "load_toml_as_dict", read)
    monkeypatch.setattr(tree_module, "discover_config_file", read)
    sync_job.cache_clear()
    try:
        assert sync_job().name == JOB_NAME
    finally:
        sync_job.cache_clear()


class CountingConnection:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.queries = con, 0

    def execute(self, *args):
        self.queries += 1
        return self.con.execute(*args)

    def close(self) -> None:
        self.con.close()


def test_a_readers_columns_of_every_table_come_from_one_query(tmp_path):
    path = tmp_path / "jofi.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE users (id BIGINT, email VARCHAR); COMMENT ON COLUMN users.email IS 'their address'")
        con.execute("CREATE TABLE test_takers (id BIGINT, name VARCHAR, _raw JSON)")
    counting = CountingConnection(readonly.connect(path))
    with PublishedReader(counting) as reader:  # type: ignore[arg-type]
        assert reader.columns("users") == [("id", "BIGINT", None), ("email", "VARCHAR", "their address")]
        assert reader.columns("test_takers") == [("id", "BIGINT", None), ("name", "VARCHAR", None), ("_raw", "JSON", None)]
        assert reader.columns("scorecards") == []  # not in this file
        assert counting.queries == 1


@pytest.mark.e2e  # a process of its own: nothing imported before the CLI
def test_the_cli_loads_the_simulator_only_for_the_simulate_command():
    code = ("import sys\nfrom jofi_pipeline import cli\n"
            "print(sorted({m for m in sys.modules if m.startswith('jofi_pipeline.simulator')}))\n"
            "group = cli.typer.main.get_command(cli.app)\nctx = cli.click.Context(group)\n"
            "assert group.list_commands(ctx)[-1] == 'simulate', group.list_commands(ctx)\n"
            "assert group.get_command(ctx, 'simulate').name == 'simulate'\n"
            "print('jofi_pipeline.simulator.cli' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


def test_a_views_row_count_comes_from_the_query_of_its_preview(tmp_path):
    from jofi_pipeline.defs.metadata import relation_metadata

    path = tmp_path / "jofi.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE test_takers (id BIGINT, name VARCHAR)")
        con.execute("INSERT INTO test_takers VALUES (3, 'c'), (1, 'a'), (2, 'b'), (5, 'e'), (4, 'd'), (6, 'f')")
        con.execute("CREATE VIEW test_taker_progress AS SELECT id, name FROM test_takers")
    spied = SpyingConnection(readonly.connect(path))
    with PublishedReader(spied) as reader:  # type: ignore[arg-type]
        metadata = relation_metadata(reader, "test_taker_progress", "live")
        assert reader.count_and_preview("test_takers", ["id"], 2) == (6, [(1,), (2,)])
        assert reader.count_and_preview("test_takers", [], 2) == (6, [])
    on_the_view = [sql for sql in spied.statements if "test_taker_progress" in sql and "duckdb_columns" not in sql]
    assert len(on_the_view) == 1, on_the_view  # counted and previewed by one query: the view computed once
    assert metadata["dagster/row_count"] == 6
    assert metadata["preview"].value.splitlines()[2:] == ["| 1 | a |", "| 2 | b |", "| 3 | c |", "| 4 | d |", "| 5 | e |"]


def test_the_funnel_charts_read_the_weeks_once(monkeypatch):
    from jofi_pipeline.defs.metadata import picture_metadata

    class Reader:
        weeks_read = 0

        def funnel_totals(self):
            return [("invited", 3), ("accepted", 2), ("all assessments completed", 1), ("with profile", 1)]

        def funnel_by_week(self, weeks: int = 12):
            self.weeks_read += 1
            from datetime import date

            return [(date(2026, 11, 23), 3, 2, 1, 1)]

    reader = Reader()
    chart = picture_metadata(reader, "invitation_funnel", "live")["chart"].value  # type: ignore[arg-type]
    assert chart.count("data:image/svg+xml;base64,") == 2 and reader.weeks_read == 1


class SpyingConnection:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.statements = con, []

    def execute(self, sql, *args):
        self.statements.append(sql)
        return self.con.execute(sql, *args)

    def close(self) -> None:
        self.con.close()


def test_the_zygote_warms_the_very_job_a_cli_sync_runs():
    from jofi_pipeline.harness import zygote

    sync_job.cache_clear()
    zygote.warm()
    warmed = sync_job.cache_info()
    assert warmed.currsize == 1 and warmed.misses == 1  # built once, in the parent, before any fork
    assert sync_job().name == JOB_NAME
    assert sync_job.cache_info().misses == 1  # a child's sync_mode finds it built
    assert not [name for name in zygote.LOADED_BY_A_RUN if name not in sys.modules]  # imported before any fork


# The zygote run as `python -m` runs it, its children reporting the collector's state instead of
# running a command.
ZYGOTE_CHILDREN_REPORT_THE_COLLECTOR = """
import gc, json, runpy
import jofi_pipeline.cli

jofi_pipeline.cli.main = lambda: print(json.dumps({"frozen": gc.get_freeze_count(), "collecting": gc.isenabled()}))
runpy.run_module("jofi_pipeline.harness.zygote", run_name="__main__", alter_sys=True)
"""


@pytest.mark.e2e  # a zygote process and a child it forks
def test_a_zygote_child_starts_with_what_start_up_loaded_frozen_and_its_collector_on(tmp_path):
    """Each forked CLI process, like the console script's own, never walks the objects its zygote
    loaded (collector.py), and collects its own garbage as usual; the zygote ends when told."""
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE_CHILDREN_REPORT_THE_COLLECTOR], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"})
    out = tmp_path / "child.out"
    try:
        zygote.stdin.write(json.dumps({"op": "run", "argv": [], "env": {}, "out": str(out), "err": str(tmp_path / "child.err")}) + "\n")
        zygote.stdin.flush()
        pid = json.loads(zygote.stdout.readline())["pid"]
        zygote.stdin.write(json.dumps({"op": "wait", "pid": pid}) + "\n")
        zygote.stdin.flush()
        assert json.loads(zygote.stdout.readline()) == {"code": 0}
        zygote.stdin.close()
        assert zygote.wait(60) == 0
    finally:
        if zygote.poll() is None:
            zygote.kill()
            zygote.wait()
    child = json.loads(out.read_text())
    assert child["collecting"] is True
    assert child["frozen"] > 100_000, child  # Dagster, the definitions, the job: every object the zygote loaded
