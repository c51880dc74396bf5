"""An empty published database (every table, comment, view and as-of macro), made once and copied.

A full build (a first publish, a damaged current copy, no usable manifest) used to run ~500
`COMMENT` statements and the views into every new file: about 0.3 s of CPU each time, where copying
a finished empty file takes a few milliseconds. So the first full build makes the empty file with
the very same statements, into a file of its own, and every full build copies it.

The file is keyed by everything it is made of: each table's schema digest, the views' digest,
DuckDB's version, the storage version and the source of the modules that write it. So no process
ever copies a stale one, and the file can be shared by all of this user's processes: it lives in
`<temp folder>/jofi-publish-templates-<uid>/`, a folder only that user may write (any other owner,
mode or a symlink there, and the full build is made statement by statement instead). A process
killed at any point leaves nothing but a file the next one reuses (a per-process folder leaked one
folder per killed process); files unused for a week go when a new one is made. A file that went
missing (a /tmp cleaner) or does not open as a database is made again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)
FOLDER_PREFIX = "jofi-publish-templates-"
UNUSED_FOR = 7 * 24 * 3600  # seconds: a file no process copied for a week is removed
PARTIAL_ABANDONED_AFTER = 3600  # seconds: a half-made file of a process killed while making it
_lock = threading.Lock()
_made: dict[str, Path] = {}  # key -> a file this process made or checked


def copy_empty_database(target: Path, key: str, make: Callable[[Path], None], made_by: Iterable[str] = ()) -> None:
    """Copy the empty database for `key` to `target`; `make(path)` builds it at `path` the first time.

    `made_by` names the modules whose code writes it: their source is part of the key. Where the
    empty database cannot be made or copied from the shared folder (TMPDIR missing, full, read-only
    or not ours), `make` builds `target` itself, as every full build did before: slower, never a
    failed publish. Any error counts, not only OSError: DuckDB reports a full disk as its own
    IOException, and a fault that is not the temp folder's comes back from the build in place.
    """
    try:
        made = _made_for(f"{key}|{source_digest(tuple(made_by))}", make)
        shutil.copyfile(made, target)
    except Exception as exc:
        log.info("no empty published database to copy (%s): building the new file statement by statement", exc)
        for leftover in (target, Path(f"{target}.wal")):
            leftover.unlink(missing_ok=True)
        make(target)


@functools.cache
def source_digest(modules: tuple[str, ...]) -> str:
    """A digest of the named modules' source files: a change to the code that writes the empty
    database changes its key, even in a process that shares the file with an older one."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()[:16]


def shared_folder() -> Path:
    """This user's folder of empty databases, made private if new; refused if anyone else could
    have written what is in it."""
    folder = Path(tempfile.gettempdir()) / f"{FOLDER_PREFIX}{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{folder} is not a private folder of this user (a symlink, another owner or writable by others)")
    return folder


def _made_for(key: str, make: Callable[[Path], None]) -> Path:
    with _lock:
        made = _made.get(key)
        if made is not None and made.exists():
            return made
        folder = shared_folder()
        made = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.duckdb"
        if not _usable(made):
            partial = made.with_name(f"{made.name}.{os.getpid()}.partial")
            _remove(partial, Path(f"{partial}.wal"))
            try:
                make(partial)
                if Path(f"{partial}.wal").exists():
                    raise RuntimeError(f"the empty published database left a WAL next to {partial}")
                os.replace(partial, made)
            finally:
                _remove(partial, Path(f"{partial}.wal"))
            _prune(folder, keep=made)
        _made[key] = made
        return made


def _usable(path: Path) -> bool:
    """Another process's file: it opens as a database that holds tables (a damaged or truncated one
    is made again). Touched, so the week-old rule keeps what is still in use."""
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            if not con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]:
                return False
        os.utime(path)
    except (OSError, duckdb.Error):
        return False
    return True


def _prune(folder: Path, keep: Path) -> None:
    """Files nobody copied for a week, and half-made files of processes killed while making them."""
    now = time.time()
    for path in folder.iterdir():
        if path == keep:
            continue
        try:
            age = now - path.lstat().st_mtime
            if age > UNUSED_FOR or (".partial" in path.name and age > PARTIAL_ABANDONED_AFTER):
                path.unlink()
        except OSError:
            pass


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
