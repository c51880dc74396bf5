"""The `jofi-pipeline` console script: a process of its own for one command (see collector.py).

Its end is quick too (`finish`): once the command is done, the process does what the interpreter
does on its way out that anyone can see (waits for the command's own threads, runs the `atexit`
handlers: logging's last flush, DuckDB's and filelock's clean-ups; flushes stdout and stderr) and
then leaves with the command's exit status, without tearing down the ~2,000 modules a sync loads
(Dagster, SQLAlchemy, pydantic, ...): freeing their objects one by one changes nothing outside the
process and cost a CLI sync ~0.2 s of CPU after its last line. Anything unusual (a thread still
working, a non-numeric exit status, stdout that can no longer be written) ends the interpreter's
own way.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from jofi_pipeline import collector, deferred, without_pandas


def run() -> None:
    collector.entry()  # before the CLI's own imports: they are start-up too
    deferred.install()  # what opening the instance imports and a sync does not use (deferred.py)
    without_pandas.install()  # what pyarrow would import at a sync's first conversion (without_pandas.py)
    from jofi_pipeline.cli import main

    finish(main)


def finish(main: Callable[[], object]) -> NoReturn:
    """Run the command, then end the process (see the module docstring). An exception other than
    SystemExit (the CLI's debug mode re-raises) is left to the interpreter: its traceback, status 1."""
    try:
        main()
    except SystemExit as done:
        code = done.code
    else:
        code = None
    leave(code)


def leave(code: object) -> NoReturn:
    """End this process with `code` (as `sys.exit(code)` would) without the interpreter's teardown."""
    if code is None:
        code = 0
    if not isinstance(code, int) or any(t is not threading.main_thread() and not t.daemon and t.is_alive()
                                        for t in threading.enumerate()):
        sys.exit(code)  # a message to print, or a thread the interpreter would wait for
    try:
        _flush()
    except (OSError, ValueError):
        sys.exit(code)  # the interpreter reports it (and exits 120), as before
    atexit._run_exitfuncs()  # what the interpreter runs on its way out (it clears the list)
    try:
        _flush()  # what the handlers printed
    except (OSError, ValueError):
        code = 120  # what the interpreter exits with when its last flush fails
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not stream.closed:
            stream.flush()
