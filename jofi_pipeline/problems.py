"""The CLI's last word on a failure no command caught: one line naming the file or value and what to do.

Commands catch what they expect and say it their own way; this is for the rest, so that nothing a
person does (a read-only folder, a damaged file, a full disk) ever ends in a traceback. A failure
this module cannot explain says it is unexpected and how to see the traceback (`--debug`).
"""

from __future__ import annotations

import errno
import sqlite3

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.sync.explain import expected, explain

_WRITABLE = f"make it writable by this user, or point {settings.ENV_DATA_DIR} (or --data-dir) at a writable directory"
_OS_ADVICE = {
    errno.EACCES: _WRITABLE,
    errno.EPERM: _WRITABLE,
    errno.EROFS: f"it is on a read-only file system: point {settings.ENV_DATA_DIR} (or --data-dir) at a writable directory",
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the command again",
    errno.ENOENT: "check the path (and JOFI_DATA_DIR / --data-dir)",
    errno.ENOTDIR: "a file stands where a folder is expected: move it aside",
    errno.EISDIR: "a folder stands where a file is expected: move it aside",
}


def describe(exc: BaseException) -> str:
    """One line for `exc`, never the API key."""
    return settings.redact_keys(" ".join(_describe(exc).split()))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and (exc.filename or exc.errno in _OS_ADVICE):
        where = f" {exc.filename}" if exc.filename else ""
        advice = _OS_ADVICE.get(exc.errno, "check the path, its permissions and the disk")
        return f"cannot use{where}: {exc.strerror or exc}; {advice}"
    if expected(exc):
        return explain(exc)
    if isinstance(exc, (duckdb.Error, sqlite3.Error)):
        return (
            f"a database file under {settings.ENV_DATA_DIR} could not be used ({explain(exc)}); "
            f"run `{settings.CLI} status` to see which, or add --debug for the traceback"
        )
    return f"unexpected {explain(exc)} (run again with --debug for the traceback)"
