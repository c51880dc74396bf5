"""An empty published database (every table, comment, view and as-of macro), made once per process.

A full build (a first publish, a damaged current copy, no usable manifest) used to run ~500
`COMMENT` statements and the views into every new file: about 0.3 s of CPU each time, where copying
a finished empty file takes a few milliseconds. So the first full build of a process makes the
empty file with the very same statements, into a file of its own, and every full build copies it.

The file is keyed by everything it is made of (each table's schema digest, the views' digest,
DuckDB's version and the storage version), so a process whose registry changed never copies a
stale one. It lives in a temporary folder of the process that made it, removed when that process
exits; a forked child may copy its parent's files but never removes them. A file that went missing
(a /tmp cleaner) is simply made again.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
_lock = threading.Lock()
_made: dict[str, Path] = {}
_folder: Path | None = None
_owner_pid: int | None = None


def copy_empty_database(target: Path, key: str, make: Callable[[Path], None]) -> None:
    """Copy the empty database for `key` to `target`; `make(path)` builds it at `path` the first time.

    Where the empty database cannot be made in a temporary folder (TMPDIR missing, full or
    read-only), `make` builds `target` itself, as every full build did before: slower, never a
    failed publish. Any error counts, not only OSError: DuckDB reports a full disk as its own
    IOException, and a fault that is not the temp folder's comes back from the build in place.
    """
    try:
        made = _made_for(key, make)
    except Exception as exc:
        log.info("no empty published database to copy (%s): building the new file statement by statement", exc)
        make(target)
        return
    shutil.copyfile(made, target)


def _made_for(key: str, make: Callable[[Path], None]) -> Path:
    with _lock:
        made = _made.get(key)
        if made is None or not made.exists():
            made = _template_folder() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.duckdb"
            partial = made.with_name(f"{made.name}.{os.getpid()}.partial")
            _remove(partial, Path(f"{partial}.wal"))
            try:
                make(partial)
                if Path(f"{partial}.wal").exists():
                    raise RuntimeError(f"the empty published database left a WAL next to {partial}")
                os.replace(partial, made)
            finally:
                _remove(partial, Path(f"{partial}.wal"))
            _made[key] = made
        return made


def _template_folder() -> Path:
    global _folder, _owner_pid
    if _folder is None or _owner_pid != os.getpid() or not _folder.exists():
        _folder = Path(tempfile.mkdtemp(prefix="jofi-publish-template-"))
        _owner_pid = os.getpid()
        atexit.register(_remove_folder, _folder, _owner_pid)
    return _folder


def _remove_folder(folder: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked child inherits this hook: the folder is its parent's
        shutil.rmtree(folder, ignore_errors=True)


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
