"""A CLI sync's head start (sync/head_start.py): the console script forks the sync at once and
loads Dagster meanwhile; the run is the same run of `jofi_sync`, and every way a sync fails still
fails the same way through the child. Real processes, as a person runs them.

A `sitecustomize` on PYTHONPATH (written per test) stands in for what no simulator fault can do:
a bug in the sync, a sync process killed by a signal, a sync that hangs until interrupted. It
writes the pid of the process that runs the sync first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from jofi_pipeline.dagster_compute_logs import compute_logs_config
from jofi_pipeline.dagster_storage import storage_config
from jofi_pipeline.runs import LOCATION_NAME
from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.warehouse.lock import ModeLock
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS
from jofi_pipeline_tests.folder_copies import copy_of, named_for

CLI = str(Path(sys.executable).parent / "jofi-pipeline")
# How a command's SIGINT starts out: a terminal's foreground command takes Ctrl-C; a background job
# of a script (`jofi-pipeline sync &` in a shell script, a suite started so) starts with it ignored.
AT_A_TERMINAL = signal.default_int_handler
IN_THE_BACKGROUND = signal.SIG_IGN
HOOK = "HEAD_START_TEST_HOOK"
PID_FILE = "HEAD_START_TEST_PID_FILE"
PROGRESS = re.compile(r"^\d\d:\d\d:\d\d ((?:live|test): .*)$")

SITECUSTOMIZE = '''
import os
_what = os.environ.get("HEAD_START_TEST_HOOK")
if _what:
    import asyncio, signal
    from jofi_pipeline.sync import runner
    _original = runner._Run.fetch_everything

    async def fetch_everything(self, account):
        with open(os.environ["HEAD_START_TEST_PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
        if _what == "bug":
            raise RuntimeError("injected bug in the sync")
        if _what == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if _what == "hang":
            await asyncio.sleep(3600)
        if _what == "chatty":  # a sync that keeps saying how far it got, as a long fan-out does
            for done in range(72000):
                self.say(f"  still fetching: {done}")
                await asyncio.sleep(0.05)
        return await _original(self, account)

    runner._Run.fetch_everything = fetch_everything
    if _what == "norun":  # the parent's Dagster run cannot be created, well after the sync has fetched
        import time
        from jofi_pipeline import runs

        def run_job_here(*args, **kwargs):
            time.sleep(8)
            raise RuntimeError("injected: the Dagster run could not be created")

        runs.run_job_here = run_job_here
'''


WORLD = {"test_takers": 5, "test_world_test_takers": 5, "seed": 31}


@pytest.fixture
def world(make_simulator, tmp_path):
    """(env, data dir, Dagster home, pid file) for a small live world and a fresh instance."""
    return world_in(tmp_path, make_simulator(**WORLD))


@pytest.fixture
def synced_world(make_simulator, tmp_path):
    """`world` after one successful CLI sync: its warehouse and its Dagster run. The sync ran once
    per test process and simulator (a warehouse records the API's host and port), here a copy of
    its folder (folder_copies.py) with the instance's config pointed at the copy."""
    sim = make_simulator(**WORLD)

    def first_sync(root: Path) -> None:
        env, *_ = world_in(root, sim)
        first = sync(env)
        assert first.returncode == 0, first.stderr

    copy_of(named_for("head-start-synced", sim), first_sync, tmp_path / "synced")
    return world_in(tmp_path / "synced", sim)


def world_in(root: Path, sim) -> tuple[dict, Path, Path, Path]:
    """The world's folders under `root` (kept when there) and the environment of a CLI run in it."""
    home, data, hooks = root / "home", root / "data", root / "hooks"
    home.mkdir(parents=True, exist_ok=True)
    hooks.mkdir(exist_ok=True)
    # The instance as the project's dagster.yaml sets it up (storage and compute logs), in `home`.
    config = {**storage_config(str(home)), **compute_logs_config(str(home / "storage")), "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOFI_") and k not in ("DAGSTER_HOME", HOOK)}
    env.update({"DAGSTER_DISABLE_TELEMETRY": "1", "DAGSTER_HOME": str(home), ENV_BASE_URL: sim.base_url,
                ENV_LIVE_KEY: sim.live_key, ENV_DATA_DIR: str(data), "PYTHONPATH": str(hooks),
                PID_FILE: str(root / "sync.pid")})
    return env, data, home, root / "sync.pid"


def sync(env: dict, *args: str, hook: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "sync", "--mode", "live", *args], env={**env, **({HOOK: hook} if hook else {})},
                          capture_output=True, text=True, timeout=300)


def started(env: dict, hook: str, sigint=AT_A_TERMINAL, **popen) -> subprocess.Popen:
    """A CLI sync started as `sigint` says, not as this test process was: an ignored SIGINT is
    passed on to every process started, so a suite run as a background job would otherwise start
    each command with Ctrl-C ignored."""
    previous = signal.signal(signal.SIGINT, sigint)  # a handler becomes the default at exec; SIG_IGN stays
    try:
        return subprocess.Popen([CLI, "sync", "--mode", "live"], env={**env, HOOK: hook},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)


def runs_of(home: Path) -> list:
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        return [(run, list(instance.all_logs(run.run_id))) for run in reversed(instance.get_runs())]


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def step_failure(logs: list):
    (failure,) = [e.dagster_event for e in logs if e.dagster_event is not None and e.dagster_event.is_step_failure]
    return failure.step_failure_data


def sync_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]


def wait_for(path: Path, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.05)
    return int(path.read_text())


def test_the_sync_runs_in_its_own_process_and_the_run_is_the_same_run_of_jofi_sync(world):
    env, data, home, _ = world
    done = subprocess.Popen([CLI, "sync", "--mode", "live"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    # The writer lock names the process that wrote: a child of the command, not the command.
    holder = json.loads(ModePaths.of("live", data).lock.read_text())
    assert holder["pid"] != done.pid

    ((run, logs),) = runs_of(home)
    assert run.job_name == "jofi_sync" and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.remote_job_origin is not None and run.remote_job_origin.location_name == LOCATION_NAME
    assert run.tags["jofi/launched_by"] == "cli" and run.tags["dagster/partition"] == "live"
    materialized = [e.dagster_event.asset_key.path[-1] for e in logs
                    if e.dagster_event is not None and e.dagster_event.is_step_materialization]
    assert sorted(materialized) == sorted([*TABLES, *(v.name for v in VIEWS)])
    checks = [e for e in logs if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks
    # The run log keeps the sync's progress lines, in the order stderr showed them.
    run_log = [e.user_message for e in logs if e.dagster_event is None and e.user_message.startswith("live: ")]
    shown = [m[1] for line in stderr.splitlines() if (m := PROGRESS.match(line))]
    assert len(run_log) > 10 and run_log == [line for line in shown if line in run_log]
    assert run_log[0].startswith("live: checking") and run_log[-1].startswith("live: fetch and merge")
    # The run began after the sync did: its log says so first, with the sync's own times, and last.
    said = [e.user_message for e in logs if e.dagster_event is None]
    head = [i for i, m in enumerate(said) if m.startswith("Head start: ")]
    assert len(head) == 2 and head[0] < said.index(run_log[0]) and head[1] > said.index(run_log[-1]), said
    assert re.search(r"began at \d\d:\d\d:\d\d UTC .*, \d+\.\ds before this step", said[head[0]]), said[head[0]]
    assert re.search(r"ran from \d\d:\d\d:\d\d to \d\d:\d\d:\d\d UTC \(\d+\.\ds\)$", said[head[1]]), said[head[1]]
    # The summary: the run's id and a time line that says Dagster's start-up ran alongside.
    assert f"(Dagster run {run.run_id[:8]}," in stdout
    (line,) = [line for line in stdout.splitlines() if line.startswith("time:")]
    assert re.search(r"= \d+\.\ds \(Dagster's start-up, \d+\.\ds, ran alongside the sync\)$", line), line


def test_a_refused_key_fails_as_before_and_never_reaches_a_log(synced_world):
    env, data, home, _ = synced_world
    refused = sync({**env, ENV_LIVE_KEY: "sk_live_notthekey0123456789"})
    line = error_line(refused)
    assert "notthekey" not in refused.stderr + refused.stdout
    (_, (run, logs)) = runs_of(home)
    assert run.status == dg.DagsterRunStatus.FAILURE
    reason = step_failure(logs).user_failure_data.description
    assert line == f"error: live sync failed: {reason}"
    assert not any("notthekey" in (e.user_message or "") for e in logs)
    # Recorded as refused, as the op records a bad key or URL (the attempt `status` shows).
    status = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert "refused" in status.stdout and reason.split(":")[0] in status.stdout, status.stdout


def test_a_refused_publish_shows_its_failed_checks_and_publishes_nothing(synced_world):
    env, data, home, _ = synced_world
    published = (data / "live" / "jofi.duckdb").resolve()
    before = published.read_bytes()
    with duckdb.connect(str(data / "live" / "work" / "jofi_work.duckdb")) as con:
        con.execute("UPDATE users SET _mode = 'test' WHERE id = (SELECT min(id) FROM users)")
    line = error_line(sync(env))
    assert "publish refused, the published warehouse is unchanged: users.mode_pure" in line
    (_, (run, logs)) = runs_of(home)
    failed = [e.dagster_event.event_specific_data for e in logs if e.dagster_event is not None
              and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION" and not e.dagster_event.event_specific_data.passed]
    assert [(f.check_name, f.severity) for f in failed] == [("mode_pure", dg.AssetCheckSeverity.ERROR)]
    assert (data / "live" / "jofi.duckdb").resolve() == published and published.read_bytes() == before


def test_a_bug_in_the_sync_keeps_its_traceback_as_the_cause(world):
    env, _, home, pid_file = world
    line = error_line(sync(env, hook="bug"))
    assert line == "error: live sync failed: RuntimeError: injected bug in the sync"
    ((run, logs),) = runs_of(home)
    assert run.status == dg.DagsterRunStatus.FAILURE
    error, causes = step_failure(logs).error, []
    while error is not None:
        causes.append(error)
        error = error.cause
    text = "\n".join(c.message + "".join(c.stack) for c in causes)
    assert "RuntimeError" in text and "sitecustomize.py" in text and "in fetch_everything" in text


def test_a_sync_process_killed_by_a_signal_fails_the_run_clearly_and_changes_nothing_published(synced_world):
    env, data, home, pid_file = synced_world
    published = (data / "live" / "jofi.duckdb").resolve()
    before = published.read_bytes()
    line = error_line(sync(env, hook="die"))
    assert re.fullmatch(r"error: live sync failed: the sync process \(pid \d+\) was killed by SIGKILL before it "
                        r"finished; nothing it had not published was published", line), line
    (_, (run, _)) = runs_of(home)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert (data / "live" / "jofi.duckdb").resolve() == published and published.read_bytes() == before


def test_a_sync_whose_dagster_run_never_started_publishes_nothing(synced_world):
    """The child syncs on its own, but publishes only once the run's step reads it: a command whose
    run could not be created (a locked or broken instance) fails and leaves the warehouse as it was."""
    env, data, home, _ = synced_world
    published = ModePaths.of("live", data).published_db
    before = published.resolve()
    failed = sync(env, hook="norun")
    assert failed.returncode == 1 and "injected: the Dagster run could not be created" in failed.stderr, failed.stderr
    assert published.resolve() == before
    again = sync(env)
    assert again.returncode == 0, again.stderr
    assert published.resolve() != before


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_the_sync_process_never_outlives_the_command(world, how):
    env, data, home, pid_file = world
    command = started(env, "hang")  # Ctrl-C is a terminal's: the command takes it wherever it is
    try:
        child = wait_for(pid_file)
        assert child != command.pid and sync_pid_alive(child)
        assert env[ENV_LIVE_KEY].encode() not in Path(f"/proc/{child}/cmdline").read_bytes()  # env, never argv
        command.send_signal(how)  # Ctrl-C, or the command killed outright
        _, stderr = command.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while sync_pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sync_pid_alive(child), "the sync process outlived the command"
        assert command.returncode != 0
        assert env[ENV_LIVE_KEY] not in stderr
        if how == signal.SIGINT:  # interrupted once by the command: it stopped as an interrupted sync does
            status = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=120)
            assert re.search(r"last attempt: FAILED .*: the sync was interrupted before it finished", status.stdout), status.stdout
            assert "CancelledError" not in status.stdout
    finally:
        command.kill()
        command.wait()


@pytest.mark.parametrize("sigint", [AT_A_TERMINAL, IN_THE_BACKGROUND], ids=["at_a_terminal", "in_the_background"])
def test_ctrl_c_on_a_sync_that_is_talking_says_interrupted_everywhere(synced_world, sigint):
    """A terminal's Ctrl-C reaches the command's whole process group while the sync sends progress
    lines: the command, `status` and the run say it was interrupted (not a broken pipe between the
    two processes, not Dagster's class name), and the warehouse is free again at once.
    Started with SIGINT ignored, the command takes it all the same once its run has begun (Dagster's
    handler), and its sync process, which inherited the ignore, still stops as interrupted (it sat
    out its grace period and was killed unrecorded: "before it recorded how it ended")."""
    env, data, home, pid_file = synced_world
    command = started(env, "chatty", sigint, start_new_session=True)
    try:
        child = wait_for(pid_file)
        relayed = []
        while not any("still fetching" in line for line in relayed[-1:]):  # the run's step relays the lines
            relayed.append(command.stderr.readline())
            assert relayed[-1], "".join(relayed)
        os.killpg(command.pid, signal.SIGINT)
        try:
            _, stderr = command.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(command.pid, signal.SIGKILL)
            _, stderr = command.communicate()
            raise AssertionError(f"the command did not end within 60 s of Ctrl-C: {stderr[-4000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.pid, signal.SIGKILL)
        command.wait()
    assert not sync_pid_alive(child)
    assert "error: live sync failed: the sync was interrupted before it finished" in stderr, stderr[-3000:]
    assert "BrokenPipe" not in stderr and "DagsterExecutionInterruptedError" not in stderr, stderr[-3000:]
    status = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert re.search(r"last attempt: FAILED .*: the sync was interrupted before it finished", status.stdout), status.stdout
    assert sync(env).returncode == 0  # nothing left holding the writer


def test_wait_lets_the_sync_process_wait_for_the_writer(world):
    env, data, home, _ = world
    lock = ModeLock(ModePaths.of("live", data).lock, "live")
    lock.acquire("held-by-the-test")
    command = subprocess.Popen([CLI, "sync", "--mode", "live", "--wait", "120"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in command.stderr:  # held until the sync says it waits for it
            seen.append(line)
            if "waiting up to 120s" in line:
                break
    finally:
        lock.release()
    stdout, rest = command.communicate(timeout=300)
    assert command.returncode == 0, "".join(seen) + rest
    assert any("waiting up to 120s" in line for line in seen) and "live sync succeeded" in stdout
