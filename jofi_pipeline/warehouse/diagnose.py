"""Why a DuckDB file would not open: held by another process, damaged, or unreachable — told apart.

The difference decides what a person may safely do. A file another process holds open (an
analyst's `ATTACH` of the working database, a `duckdb` shell) is whole: the fix is to close that
session, and advice to move the file aside and restore an older copy would throw away everything
fetched since. Only a file DuckDB itself calls damaged gets the restore advice. The holder is
named where the OS can tell: DuckDB's lock error usually carries its PID, and /proc names the
process (or, without a PID, which process has the file open).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from jofi_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError

_PID = re.compile(r"\(PID (\d+)\)")
_LOCKED = ("could not set lock on file", "conflicting lock is held")
_DAMAGED = ("not a valid duckdb database file", "corrupt database file", "checksum", "serialization error")
CMDLINE_CHARS = 160


class WarehouseLockedError(WarehouseBusyError):
    """Another process holds the DuckDB file open; the file itself is fine."""

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class WarehouseDamagedError(WarehouseError):
    """DuckDB says the file is not (or no longer) a valid database."""


def is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _LOCKED)


def is_damaged(exc: BaseException) -> bool:
    text = str(exc).lower()
    return not is_locked(exc) and any(marker in text for marker in _DAMAGED)


def open_failure(path: Path, exc: BaseException, *, what: str, locked: str, damaged: str) -> WarehouseError:
    """The error to raise when `path` (described as `what`) would not open.

    `locked` says what to do while another process holds it; `damaged` how to recover a broken
    file. Anything else (permissions, a full disk, a directory in its place) gets neither.
    """
    detail = first_line(exc)
    if is_locked(exc):
        holder = lock_holder(path, str(exc))
        return WarehouseLockedError(
            f"{what} {path} is open in another process ({holder}); nothing was changed and the file is not "
            f"damaged. {locked}",
            holder=holder,
        )
    if is_damaged(exc):
        return WarehouseDamagedError(f"{what} {path} is damaged ({detail}); nothing was changed. {damaged}")
    return WarehouseError(
        f"cannot open {what} {path} ({detail}); nothing was changed. Check that it is a file this user "
        "may read and write, and that the disk has free space"
    )


def restore_work_db(paths) -> str:
    """What to do with a damaged working database (`paths`: its ModePaths): start again from the published copy."""
    from jofi_pipeline import settings

    return (
        f"Move it aside and restore it from the published copy: mv {paths.work_db} {paths.work_db}.broken && cp "
        f"{paths.published_db} {paths.work_db}, then run `{settings.CLI} sync --mode {paths.mode} --full` to fetch "
        "again what that copy lacks"
    )


def first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return text or type(exc).__name__


def lock_holder(path: Path, message: str = "") -> str:
    """`pid 4242: duckdb /data/live/work/jofi_work.duckdb`, as far as the OS tells; never raises."""
    match = _PID.search(message)
    pid = int(match.group(1)) if match else _pid_with_open(path)
    if pid is None:
        return "holder unknown: look for a duckdb shell, notebook or `sql` session that opened it"
    if pid == os.getpid():
        return f"pid {pid}: this process"
    command = process_command(pid)
    return f"pid {pid}: {command}" if command else f"pid {pid}"


def process_command(pid: int) -> str | None:
    """The command line of `pid` from /proc, shortened; None where there is no /proc or no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    parts = [" ".join(part.decode("utf-8", "replace").split()) for part in raw.split(b"\0") if part]
    if not parts:
        return None
    command = " ".join([Path(parts[0]).name, *parts[1:]])  # `python3.11 -m ...`, not the interpreter's full path
    return command if len(command) <= CMDLINE_CHARS else command[: CMDLINE_CHARS - 3] + "..."


def _pid_with_open(path: Path) -> int | None:
    """A process (other than this one) with `path` open, found through /proc/*/fd; None if none is seen."""
    try:
        target = path.resolve()
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if Path(os.readlink(f"/proc/{pid}/fd/{fd}")) == target:
                    return pid
            except OSError:
                continue
    return None
