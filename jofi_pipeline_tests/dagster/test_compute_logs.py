"""The project's compute log manager (jofi_pipeline/dagster_compute_logs.py): a run's stdout and
stderr land in the files the UI shows, as with Dagster's LocalComputeLogManager, and still reach
the terminal, without the four processes per run Dagster's manager starts to mirror them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from jofi_pipeline.dagster_compute_logs import JofiComputeLogManager, compute_logs_config
from jofi_pipeline.dagster_storage import storage_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dg.op
def talkative() -> None:
    print("to stdout from Python")
    print("to stderr from Python", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, b"to stderr below Python\n")  # as C code or a child process would write


@dg.job
def talk() -> None:
    talkative()


def instance_at(home: Path) -> dg.DagsterInstance:
    config = {**storage_config(str(home)), **compute_logs_config(str(home / "storage")), "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


@contextmanager
def streams_on_descriptors() -> Iterator[None]:
    """sys.stdout and sys.stderr on descriptors 1 and 2, as in a CLI process (pytest's capture swaps
    in streams without one while a test runs). Under capfd the two descriptors are the terminal."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


@pytest.fixture
def no_processes(monkeypatch):
    """Starting any process fails the test (Dagster's manager starts `tail -F` and a watcher)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def test_a_runs_output_lands_in_its_compute_log_files_and_on_the_terminal_without_a_process(tmp_path, capfd, no_processes):
    with instance_at(tmp_path) as instance:
        manager = instance.compute_log_manager
        assert type(manager) is JofiComputeLogManager
        with streams_on_descriptors():
            result = talk.execute_in_process(instance=instance)
        assert result.success
        (captured,) = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "LOGS_CAPTURED"]
        log_key = manager.build_log_key_for_run(result.run_id, captured.dagster_event.logs_captured_data.file_key)
        data = manager.get_log_data(log_key)  # what the UI's stdout/stderr view reads
        assert manager.is_capture_complete(log_key)
    assert data.stdout.decode() == "to stdout from Python\n"
    assert "to stderr from Python\nto stderr below Python\n" in data.stderr.decode()  # with Dagster's console log
    seen = capfd.readouterr()
    assert "to stdout from Python\n" in seen.out
    assert "to stderr from Python\nto stderr below Python\n" in seen.err


def test_dagsters_own_manager_starts_processes_to_mirror_the_files(tmp_path, no_processes):
    """What the project's manager saves: the same capture by Dagster's starts processes."""
    manager = LocalComputeLogManager(str(tmp_path))
    with pytest.raises(AssertionError, match="a process was started"):
        with manager.capture_logs(["run", "step"]):
            pass


def test_output_after_the_capture_goes_to_the_terminal_only(tmp_path, capfd):
    manager = JofiComputeLogManager(str(tmp_path))
    with streams_on_descriptors():
        with manager.capture_logs(["run", "step"]):
            os.write(1, b"inside\n")
        os.write(1, b"after\n")
    assert capfd.readouterr().out == "inside\nafter\n"
    assert manager.get_log_data(["run", "step"]).stdout.decode() == "inside\n"


def test_a_capture_leaves_no_descriptor_open(tmp_path, capfd):
    manager = JofiComputeLogManager(str(tmp_path))
    with streams_on_descriptors():
        before = sorted(os.listdir("/proc/self/fd"))
        with manager.capture_logs(["run", "step"]):
            os.write(2, b"inside\n")
        assert sorted(os.listdir("/proc/self/fd")) == before
    assert capfd.readouterr().err == "inside\n"


def test_the_project_instance_and_the_tests_instance_use_it():
    project = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert project["compute_logs"] == compute_logs_config(".dagster_home/storage")["compute_logs"]
    home = Path(os.environ["DAGSTER_HOME"])
    assert yaml.safe_load((home / "dagster.yaml").read_text())["compute_logs"] == compute_logs_config(str(home / "storage"))["compute_logs"]


@pytest.mark.e2e
def test_a_terminal_nobody_reads_does_not_hold_the_step_at_its_end(tmp_path):
    """A paused pager or a stalled pipe on stdout: Dagster's manager left only its `tail` blocked;
    the mirror thread must not keep the step (and the run) from ending."""
    script = (
        "import os, sys, threading\n"
        "from jofi_pipeline.dagster_compute_logs import JofiComputeLogManager\n"
        "r, w = os.pipe()\n"
        "os.dup2(w, 1)\n"
        f"manager = JofiComputeLogManager(base_dir={str(tmp_path)!r})\n"
        "ended = threading.Event()\n"
        "def step():\n"
        "    with manager.capture_logs(['run', 'compute_logs', 'step']):\n"
        "        sys.stdout.write('x' * 1_000_000 + '\\n'); sys.stdout.flush()\n"
        "    ended.set()\n"
        "threading.Thread(target=step, daemon=True).start()\n"
        "sys.stderr.write(f'ended={ended.wait(20)}\\n'); sys.stderr.flush()\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "ended=True" in done.stderr, done.stderr
    logs = list(tmp_path.rglob("*.out"))
    assert logs and max(log.stat().st_size for log in logs) >= 1_000_000  # the file holds it all
