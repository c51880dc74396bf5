"""Exclusive per-mode writer lock: DuckDB allows one writer per file, so one sync per mode.

fcntl.flock on a lock file: released by the kernel when the process dies, so a crashed run
never leaves a stale lock behind. The file holds who took it, for the busy message.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from jofi_pipeline.warehouse.diagnose import process_command
from jofi_pipeline.warehouse.errors import WarehouseBusyError


class ModeLock:
    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.mode = mode
        self._fd: int | None = None

    def acquire(self, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise WarehouseBusyError(busy_message(self.mode, holder, self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "run_id": run_id, "since": datetime.now(UTC).isoformat()}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def busy_message(mode: str, holder: str, path: Path) -> str:
    return f"the {mode!r} warehouse is being written by another sync ({holder}); wait for that run to finish and retry. Lock file: {path}"


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "holder unknown"
    pid = info.get("pid")
    command = process_command(pid) if isinstance(pid, int) else None
    return f"run {info.get('run_id')!r}, pid {pid}{f' ({command})' if command else ''}, since {info.get('since')}"


def writer_holder(path: Path, mode: str) -> str | None:
    """The busy message when another process holds the mode's writer lock, else None.

    A probe (a shared lock taken and dropped at once; the holder record is left as it is), so a
    caller can refuse before it starts anything. The sync itself still takes the lock for real,
    which stays the guard against a sync that starts in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file yet, or a data dir that is not one: the sync itself says what is wrong
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return busy_message(mode, _read_holder(fd), path)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
