"""Dagster's local compute logs (a run's stdout and stderr, on its page in the UI), mirrored to
the terminal by a thread of the run's process instead of four processes per run.

Dagster's LocalComputeLogManager points the step's stdout and stderr at files and, so that the
terminal still shows them, starts for each of the two a `tail -F` of its file and a Python
process that kills that `tail` if the run's process dies: four processes for every run, ~0.07 s
CPU of a CLI sync (one run). Here the descriptors point at the same files in the same way (so
what the step, its C code and any child process write lands there, and the UI reads the files as
Dagster's own manager does: this class is that manager, only capturing differently), and one
thread copies what the files gain to where the descriptors pointed before. Nothing outlives the
process, so nothing is left to watch for orphans.

Configured in dagster.yaml as `compute_logs: {module: jofi_pipeline.dagster_compute_logs,
class: JofiComputeLogManager, config: {base_dir: …}}`.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import IO

from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._utils import ensure_file, touch_file

MODULE = __name__
FINISH_SECONDS = 2.0  # at most this long a step's end waits for the terminal to take its output
POLL_SECONDS = 0.05  # how soon a line the step writes reaches the terminal (tail -F: when inotify wakes it)
CHUNK = 1 << 16


class JofiComputeLogManager(LocalComputeLogManager):
    """LocalComputeLogManager (same files, same reading) that mirrors them with a thread."""

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> JofiComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirrored_to_files({sys.stdout: outpath, sys.stderr: errpath}):
            yield CapturedLogContext(log_key)
        # left on the file system so that the UI knows the capture is complete (as Dagster does)
        touch_file(self.complete_artifact_path(log_key))


def compute_logs_config(base_dir: str) -> dict:
    """The dagster.yaml `compute_logs:` entry for this manager keeping its files in `base_dir`."""
    return {"compute_logs": {"module": MODULE, "class": JofiComputeLogManager.__name__, "config": {"base_dir": base_dir}}}


@contextmanager
def mirrored_to_files(paths: dict[IO, str]) -> Iterator[None]:
    """Within: each stream's file descriptor writes to the end of its file (as Dagster's
    `redirect_to_file`), and a thread copies what each file gains to where the descriptor
    pointed before, until the end, when the rest is copied before the descriptors are restored.
    A stream without a descriptor (a test runner's) is left alone, its file made empty, as Dagster does."""
    with ExitStack() as stack:
        mirrors = []
        for stream, path in paths.items():
            ensure_file(path)
            fd = _fileno(stream)
            if fd is not None:
                mirrors.append(stack.enter_context(_redirected(stream, fd, path)))
        if not mirrors:
            yield
            return
        copier = _Copier(mirrors)
        try:
            yield
        finally:
            for stream in paths:
                _flush(stream)
            copier.finish()


class _Mirror:
    """A file being written through a redirected descriptor, and where its copy goes. Its own
    descriptors (the file read, a duplicate of the terminal) are closed by whoever copies last:
    the copier thread once started, else `_redirected`; so an interrupted end never leaves the
    thread writing to a descriptor number closed and given to another file meanwhile."""

    def __init__(self, path: str, terminal: int) -> None:
        self.source = open(path, "rb")  # noqa: SIM115  closed by close()
        self.terminal: int | None = os.dup(terminal)
        self.copied_by_thread = False

    def copy_new(self) -> None:
        while chunk := self.source.read(CHUNK):
            self._write(chunk)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.terminal is not None:
            try:
                view = view[os.write(self.terminal, view):]
            except BlockingIOError:  # a non-blocking terminal that is full: wait until it takes more
                select.select([], [self.terminal], [])
            except OSError:  # the terminal is gone (a closed pipe): the file keeps it all
                self._close_terminal()

    def _close_terminal(self) -> None:
        if self.terminal is not None:
            os.close(self.terminal)
            self.terminal = None

    def close(self) -> None:
        self.source.close()
        self._close_terminal()


@contextmanager
def _redirected(stream: IO, fd: int, path: str) -> Iterator[_Mirror]:
    _flush(stream)
    terminal = os.dup(fd)
    try:
        with open(path, "ab", buffering=0) as target:
            mirror = _Mirror(path, terminal)
            try:
                os.dup2(target.fileno(), fd)
                try:
                    yield mirror
                finally:
                    _flush(stream)
                    os.dup2(terminal, fd)
            finally:
                if not mirror.copied_by_thread:
                    mirror.close()
    finally:
        os.close(terminal)


class _Copier(threading.Thread):
    """Started at once; copies every POLL_SECONDS, and the rest when finished."""

    def __init__(self, mirrors: list[_Mirror]) -> None:
        super().__init__(name="jofi-compute-log-mirror", daemon=True)
        self._mirrors = mirrors
        self._done = threading.Event()
        self.start()
        for mirror in mirrors:
            mirror.copied_by_thread = True

    def run(self) -> None:
        try:
            while not self._done.wait(POLL_SECONDS):
                self._copy()
            self._copy()  # what was written before the end
        finally:
            for mirror in self._mirrors:
                mirror.close()

    def _copy(self) -> None:
        for mirror in self._mirrors:
            mirror.copy_new()

    def finish(self) -> None:
        """Wait for the last copy, but not for a terminal nobody reads (a paused pager, a stalled
        pipe): the step ends, the files hold everything, and the thread, owning its descriptors,
        finishes or dies with the process."""
        self._done.set()
        self.join(FINISH_SECONDS)


def _flush(stream: IO) -> None:
    try:
        stream.flush()
    except (OSError, ValueError):
        pass


def _fileno(stream: IO) -> int | None:
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both an OSError and a ValueError
        return None
    return fd if isinstance(fd, int) else None
