"""A pre-imported `jofi-pipeline` that forks a fresh CLI process per request: real processes to
kill -9, without paying Python + Dagster imports (seconds) on every trial.

Run as `python -m jofi_pipeline.harness.zygote`; one JSON request per stdin line:
  {"op": "run", "argv": [...], "env": {...}, "out": path, "err": path} -> {"pid": n}
  {"op": "wait", "pid": n}                                            -> {"code": exit code, or -signal}
The child is an ordinary CLI process: same code path as the `jofi-pipeline` script.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # the zygote's own process: no collector walks while it loads (serve())
    gc.disable()

import jofi_pipeline.cli  # noqa: F401  the heavy imports happen once, here
import jofi_pipeline.definitions  # noqa: F401
import jofi_pipeline.runs  # noqa: F401


def _child(request: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["jofi-pipeline", *request["argv"]]
    code = 0
    try:
        jofi_pipeline.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # an uncaught exception: print it like the interpreter would
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# What a forked child's sync still imported after the fork (sys.modules after a child's sync, less
# the zygote's): Dagster's run machinery, the file-system paths its compute logs use, the asset
# pages' charts, pyarrow's pandas bridge. ~0.08 s of CPU in every child otherwise.
LOADED_BY_A_RUN = (
    "dagster._core.execution.plan.active",
    "dagster._core.executor.in_process",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.secrets.env_file",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.system_config.composite_descent",
    "fsspec.implementations.local",
    "jofi_pipeline.report.charts",
    "jofi_pipeline.report.pictures",
    "pyarrow.pandas_compat",
    "upath.implementations.local",
    "watchdog.observers.polling",
    "watchdog.utils.dirsnapshot",
)


def warm() -> None:
    """Import here, once, what a sync run would import lazily in every forked child (the defs
    modules with DuckDB and Arrow, Dagster's instance storage with SQLAlchemy and alembic,
    LOADED_BY_A_RUN): seconds per trial otherwise. Arrow holds that pandas is absent, as in the
    console script's process (without_pandas.py). Starts no thread."""
    import importlib

    import pyarrow
    from dagster import DagsterInstance

    from jofi_pipeline import without_pandas

    without_pandas.forgo(pyarrow)
    for name in LOADED_BY_A_RUN:
        importlib.import_module(name)

    jofi_pipeline.runs.sync_job()  # the job a CLI sync runs (runs.sync_mode), built once for every child
    DagsterInstance.ephemeral().dispose()


def serve() -> None:
    """Warm up, then fork a child per request until stdin closes.

    As the console script does (collector.py), the collector is paused while the zygote loads and
    what it loaded is then frozen: each child never walks those objects again (nor copies the
    memory pages a walk would touch). The zygote ends as the console script does too, without the
    interpreter's teardown of all it loaded (entry.leave). One difference stays: a child is not
    the console script's process (collector.own_process), so its sync runs without the head
    start's fork (sync/head_start.py)."""
    warm()
    assert threading.active_count() == 1, "forking is only safe before any thread starts"
    gc.freeze()
    gc.enable()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            pid = os.fork()
            if pid == 0:
                _child(request)
            reply: dict[str, Any] = {"pid": pid}
        else:
            _, status = os.waitpid(request["pid"], 0)
            reply = {"code": os.waitstatus_to_exitcode(status)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    from jofi_pipeline.entry import leave

    leave(0)


class Zygote:
    """The test side: start the zygote once, then `start()`/`wait()` CLI processes cheaply."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "jofi_pipeline.harness.zygote"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"},
        )
        self._n = 0

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the zygote died")
        return json.loads(line)

    def start(self, argv: list[str], env: dict[str, str]) -> tuple[int, Path, Path]:
        self._n += 1
        out, err = self.workdir / f"cli-{self._n}.out", self.workdir / f"cli-{self._n}.err"
        # The caller's DAGSTER_HOME (in tests: the session's throwaway instance), not the checkout's
        # .dagster_home: test workers run side by side, and a kill -9 must not leave runs in the
        # developer's instance.
        inherited = {name: os.environ[name] for name in ("PATH", "DAGSTER_HOME") if name in os.environ}
        env = {**inherited, "DAGSTER_DISABLE_TELEMETRY": "1", **env}
        pid = self._ask({"op": "run", "argv": argv, "env": env, "out": str(out), "err": str(err)})["pid"]
        return pid, out, err

    def wait(self, pid: int) -> int:
        return self._ask({"op": "wait", "pid": pid})["code"]

    def run(self, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        pid, out, err = self.start(argv, env)
        code = self.wait(pid)
        return code, out.read_text(errors="replace"), err.read_text(errors="replace")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    serve()
