"""The syncs a CLI `sync` started ahead of its Dagster run, in a child process, one per mode.

A CLI sync spends ~2.7 s loading Dagster, opening the instance and creating the run before the
op starts, and the sync itself keeps one core busy: so the console script forks the sync at once
(after the writer-lock refusal check), and the parent loads Dagster on the other core meanwhile.
The op (`jofi_warehouse`) then takes the head-started sync of its mode instead of syncing again:
it relays the child's progress lines (to the run log and, as every sync's lines, to stderr, in
order, with the child's times), waits for its SyncReport and goes on as always. Runs launched any
other way (UI, schedule, sensor, `dagster job execute`, a test) hold none and sync in the op.

The child ends with its parent (PR_SET_PDEATHSIG), sits in its own process group (a terminal's
Ctrl-C reaches the parent only, which interrupts the child once and waits for it; the child takes
that SIGINT as Ctrl-C even when the command was started with SIGINT ignored), never sees an
API key outside its environment, and leaves without the interpreter's teardown, as entry.py does.
Only the console script's process forks (collector.own_process), and only while it has one thread.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jofi_pipeline import collector
from jofi_pipeline.settings import Mode, redact_keys
from jofi_pipeline.sync import portable
from jofi_pipeline.sync.explain import expected
from jofi_pipeline.sync.report import SyncFailed, SyncReport, utc_now
from jofi_pipeline.sync.runner import new_run_id
from jofi_pipeline.sync.setup import SyncSetup, resource_config, score_profiles_in, sync_with

LOGGER = "jofi_pipeline.sync"  # the sync's own log lines (runner, targets, by_id, attempts): stderr
STOP_GRACE_SECONDS = 15.0  # an interrupted child lets a publish or upload under way finish, records its attempt, then ends; killed after this
_HEADER = struct.Struct(">I")
_PR_SET_PDEATHSIG = 1

_held: dict[str, HeadStartedSync] = {}


class SyncProcessDied(SyncFailed):
    """The sync's process ended without a report or an error (killed by a signal, most likely)."""


def possible() -> bool:
    """A fork is safe only with one thread: another one could hold a lock the child then waits on."""
    return collector.own_process() and hasattr(os, "fork") and threading.active_count() == 1


@contextmanager
def head_started(mode: Mode, started: float, *, full_refresh: bool = False, score_profile: str = "",
                 concurrency: int | None = None, rate: float | None = None, data_dir: Path | None = None,
                 wait: float = 0.0) -> Iterator[HeadStartedSync | None]:
    """Start the sync of `mode` in a child now (when possible()) and hold it for the op; stop it
    and wait for it on the way out, whatever happened (an interrupt, a run that never started)."""
    if not possible():
        yield None
        return
    setup = SyncSetup(**resource_config(wait=wait, concurrency=concurrency, rate=rate, data_dir=data_dir))
    options = setup.options(full_refresh=full_refresh, score_profiles=score_profiles_in(score_profile))
    sync = HeadStartedSync.fork(mode, setup, options, started)
    _held[mode] = sync
    try:
        yield sync
    finally:
        _held.pop(mode, None)
        sync.stop()


def held(mode: Mode) -> HeadStartedSync | None:
    """The sync head-started for `mode` in this process, if any."""
    return _held.get(mode)


def take(mode: Mode) -> HeadStartedSync | None:
    """For the op: the head-started sync of `mode`, once (a second run of the mode syncs itself)."""
    sync = _held.get(mode)
    if sync is None or sync.taken:
        return None
    sync.taken = True
    return sync


class HeadStartedSync:
    """The parent's side of one child sync: its pid and the pipe its messages come through."""

    def __init__(self, pid: int, messages: int, go: int, started: float, run_id: str) -> None:
        self.pid = pid
        self.started = started  # time.monotonic() when the command began
        self.sync_began: float | None = None  # time.monotonic() when the child began to sync
        self.taken = False
        self.run_id = run_id  # the sync run id it records under (sync/interrupted.py)
        self._pipe = os.fdopen(messages, "rb")
        self._go: int | None = go  # the publish's go-ahead (one byte), or its withdrawal (closed unsent)
        self._status: int | None = None

    @classmethod
    def fork(cls, mode: Mode, setup: SyncSetup, options, started: float) -> HeadStartedSync:
        run_id = new_run_id(mode, utc_now())  # chosen here: an interrupted command reads its own sync's record
        read, write = os.pipe()
        go_read, go_write = os.pipe()
        parent = os.getpid()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered is printed twice
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.close(go_write)
            _child(write, go_read, parent, mode, setup, options, run_id)  # never returns
        os.close(write)
        os.close(go_read)
        return cls(pid, read, go_write, started, run_id)

    def _let_publish(self, allowed: bool) -> None:
        """Send the go-ahead (the run exists: the op reads this sync) or withdraw it, once."""
        if self._go is None:
            return
        try:
            if allowed:
                os.write(self._go, b"g")
        except OSError:
            pass  # the child has ended: there is nothing left to allow
        finally:
            os.close(self._go)
            self._go = None

    def report(self, progress: Callable[[str], None]) -> SyncReport:
        """Relay the child's lines as they come (its log to stderr, its progress to `progress`),
        then its SyncReport; raise its error as it was raised there, or SyncProcessDied."""
        log = logging.getLogger(LOGGER)
        report = error = None
        trace = ""
        self._let_publish(True)  # the run exists and its step reads this sync: it may publish
        for kind, *body in self._messages():
            if kind == "began":
                self.sync_began = body[0]
                progress(_began_line(self.sync_began))
            elif kind == "log":
                created, level, text = body
                if log.isEnabledFor(level):
                    record = log.makeRecord(LOGGER, level, "(sync process)", 0, text, None, None)
                    record.created, record.msecs = created, (created % 1) * 1000
                    log.handle(record)
            elif kind == "progress":
                progress(body[0])
            elif kind == "report":
                report = body[0]
            elif kind == "failed":
                error, trace = portable.loads(body[0])
        status = self._wait()
        if report is not None:
            if self.sync_began is not None:
                progress(_ended_line(self.sync_began))
            return report
        if error is not None:
            if not expected(error):  # a bug: the failure keeps where it happened, as in the op
                _last_cause(error).__cause__ = portable.SyncProcessTraceback(redact_keys(trace))
            raise error
        raise SyncProcessDied(f"the sync process (pid {self.pid}) {_ended(status)} before it finished; "
                              "nothing it had not published was published")

    def stop(self) -> None:
        """End the child if it still runs (one SIGINT: it stops as an interrupted sync does), and
        wait for it; SIGKILL if it has not ended within STOP_GRACE_SECONDS."""
        self._let_publish(False)  # a sync whose run never read it publishes nothing (it fails at the gate)
        self._pipe.close()  # what it would still say is not read: its writes fail, it never blocks on them
        if self._status is None and not self._ended_now():
            os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while not self._ended_now():
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    self._wait()
                    break
                time.sleep(0.02)

    def _messages(self) -> Iterator[tuple]:
        while True:
            header = self._pipe.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return  # the child closed the pipe: it ended
            data = self._pipe.read(_HEADER.unpack(header)[0])
            try:
                yield portable.loads(data)
            except Exception:  # cut short by the child's death
                return

    def _wait(self) -> int:
        if self._status is None:
            self._status = os.waitpid(self.pid, 0)[1]
        return self._status

    def _ended_now(self) -> bool:
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return False
            self._status = status
        return True


def _wall_clock(monotonic: float) -> str:
    """A time.monotonic() reading (one clock for every process here) as the UTC time of day."""
    moment = time.time() - (time.monotonic() - monotonic)
    return time.strftime("%H:%M:%S", time.gmtime(moment))


def _began_line(began: float) -> str:
    """The run log's first word on a head-started sync: the run began after the sync did, and its
    lines reach the run log when the op reads them, so the run's own times leave that part out."""
    return (f"Head start: this sync began at {_wall_clock(began)} UTC in the CLI command's own process, "
            f"{time.monotonic() - began:.1f}s before this step, while Dagster loaded; its lines below reach "
            "this log as the step reads them, so this run's duration leaves out what it did before")


def _ended_line(began: float) -> str:
    return f"Head start: the sync ran from {_wall_clock(began)} to {_wall_clock(time.monotonic())} UTC ({time.monotonic() - began:.1f}s)"


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}"
    return f"ended with exit status {os.waitstatus_to_exitcode(status)}"


def _last_cause(exc: BaseException) -> BaseException:
    for _ in range(portable.MAX_CHAIN):
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return exc


class RunNeverStarted(Exception):
    """The CLI's Dagster run did not start (or the command stopped first): the sync publishes nothing."""


def _gate(go: int) -> Callable[[], Awaitable[None]]:
    """What the child awaits before it publishes: the parent's go-ahead, sent once the run's step
    reads this sync. A command whose run never started withdraws it, and nothing is published."""

    async def before_publish() -> None:
        said = await asyncio.to_thread(os.read, go, 1)
        os.close(go)
        if said != b"g":
            raise RunNeverStarted("the Dagster run of this sync did not start, so the sync published nothing")

    return before_publish


def _child(write: int, go: int, parent: int, mode: Mode, setup: SyncSetup, options, run_id: str) -> None:
    """The sync, in the forked child: messages to the parent, then out without the teardown."""
    code = 1
    try:
        os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the parent, which interrupts this once
        _interruptible()
        _end_with(parent)
        pipe = os.fdopen(write, "wb")

        def send(*message: object) -> None:
            data = portable.dumps(message)
            pipe.write(_HEADER.pack(len(data)) + data)
            pipe.flush()

        log = logging.getLogger(LOGGER)
        log.handlers[:] = [_Relay(send)]
        log.setLevel(logging.INFO)
        log.propagate = False  # the parent prints these (progress_to_stderr), never this process
        collector.loaded()  # what the sync needs is loaded (collector.py)
        send("began", time.monotonic())
        try:
            store = setup.store(mode)
            report = asyncio.run(sync_with(setup, mode, store, options, _unless_gone(send), _gate(go), run_id))
        except BaseException as exc:
            send("failed", portable.exception_message(exc))
            code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        else:
            send("report", report)
            code = 0
        pipe.close()
    except BaseException:  # the parent is gone (a broken pipe), or the set-up failed: nothing to say
        pass
    finally:
        try:
            atexit._run_exitfuncs()  # the interpreter's own last steps (entry.leave), not its teardown
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        finally:
            os._exit(code)


def _unless_gone(send: Callable[..., None]) -> Callable[[str], None]:
    """The sync's progress lines to the parent; dropped once the parent stopped reading. It closes
    the pipe just before it interrupts this process (stop): a line written in between must not fail
    the sync with a BrokenPipeError, which `status` would then give as the reason instead of the
    interruption."""

    def progress(line: str) -> None:
        try:
            send("progress", line)
        except OSError:
            pass

    return progress


def _interruptible() -> None:
    """Let the parent's one SIGINT (stop) interrupt this sync as Ctrl-C does (asyncio.run then
    cancels it and it records how it ended), whatever the command inherited: a command started as
    a background job of a script starts with SIGINT ignored, which a fork keeps, and the sync
    then sat out its grace period and was killed unrecorded. Only the parent signals this process
    (its own process group), so the launcher's choice is the parent's alone."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _end_with(parent: int) -> None:
    """SIGKILL this process when the parent dies (Linux), so no sync outlives its command."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


class _Relay(logging.Handler):
    """The sync's log records, sent to the parent as (time, level, text)."""

    def __init__(self, send: Callable[..., None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send("log", record.created, record.levelno, record.getMessage())
        except OSError:
            pass  # the parent stopped reading (it is stopping this process)
