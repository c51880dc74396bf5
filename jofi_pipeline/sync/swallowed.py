"""Dagster's interruption of a stopped run, when a DuckDB statement swallowed it.

Dagster stops a run by raising DagsterExecutionInterruptedError from its SIGINT (and SIGTERM)
handler, on the main thread, wherever that thread is. Inside a DuckDB statement run there (a
fetch plan, a query of the work database, the run's record), DuckDB's client runs the handler
itself (PyErr_CheckSignals), stops the query and raises RuntimeError("Query interrupted") in
place of the handler's exception, which is lost: the run was recorded as failed with that text,
and Dagster showed a failure, not a cancel.

While `noting()`, every exception those handlers raise is noted; `behind(exc)` gives the Dagster
interruption that a DuckDB interrupt error stands for, so the run is recorded and ends as any
other interruption does. A DuckDB interrupt with no Dagster interruption behind it (Ctrl-C's
KeyboardInterrupt, a connection's interrupt()) stays what it was. Handlers run on the main
thread only, as does everything here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import duckdb

from jofi_pipeline.sync.explain import is_dagster_interruption, leaves

# DuckDB's Python client, when a signal handler raised during a statement (duckdb 1.x and 2.x).
QUERY_INTERRUPTED = "Query interrupted"
SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Dagster maps SIGTERM to its SIGINT handler

_noted: list[BaseException] = []  # the last exception a noted handler raised, while noting


@contextmanager
def noting() -> Iterator[None]:
    """Note what the current SIGINT/SIGTERM handlers raise, until the block ends. Each handler is
    put back only if it is still the one put in (Dagster restores its own on the way out, and a
    generator may be closed after that)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # no handler can be set, nor runs, off the main thread
        return
    put: dict[int, tuple[Callable, object]] = {}
    _noted.clear()  # nothing from before this block (its last exit may have been cut short)
    try:
        for signum in SIGNALS:
            handler = signal.getsignal(signum)
            # Not SIG_DFL / SIG_IGN, nor Python's own: asyncio.run turns Ctrl-C into a cancel only
            # while that one is in place, and it raises no Dagster interruption to note.
            if callable(handler) and handler is not signal.default_int_handler:
                put[signum] = (_noting(handler), handler)
                signal.signal(signum, put[signum][0])
        yield
    finally:
        for signum, (wrapper, handler) in put.items():
            if signal.getsignal(signum) is wrapper:
                signal.signal(signum, handler)
        _noted.clear()


def behind(exc: BaseException) -> BaseException | None:
    """The Dagster interruption `exc` stands for: `exc` is (or groups) DuckDB's interrupt error and
    a noted handler raised Dagster's interruption; else None."""
    if not _noted or not is_dagster_interruption(_noted[-1]):
        return None
    if not any(_is_duckdb_interrupt(leaf) for leaf in leaves(exc)):
        return None
    return _noted[-1]


def _is_duckdb_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.InterruptException) or (type(exc) is RuntimeError and str(exc) == QUERY_INTERRUPTED)


def _noting(handler: Callable) -> Callable[[int, FrameType | None], object]:
    def noting_handler(signum: int, frame: FrameType | None) -> object:
        try:
            return handler(signum, frame)
        except BaseException as exc:
            _noted[:] = [exc]
            raise

    return noting_handler


def reraise(exc: BaseException) -> None:
    """Raise the Dagster interruption `exc` stands for (see `behind`), if any; else return."""
    stop = behind(exc)
    if stop is not None:
        raise stop from exc
