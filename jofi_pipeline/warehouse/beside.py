"""One blocking step run in a thread of its own while the caller does another, then joined.

The join waits whatever interrupts it (a Ctrl-C, Dagster's stop), as CheckpointBeside.wait does:
the step may read through a connection the caller closes next, and a DuckDB connection closed
under a running statement aborts the interpreter. The interruption is raised once it has ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Beside(Generic[T]):
    """`work()` started at once in a thread named `name`; `result()` joins it."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._work = work
        self._ended = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        # Not a daemon: the interpreter waits for it at exit, as for any step that may run a
        # DuckDB statement (a process ending under one aborts).
        threading.Thread(target=self._run, name=name).start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self._ended.set()

    @property
    def ended(self) -> threading.Event:
        """Set once the step has ended, however it ended."""
        return self._ended

    def result(self) -> T:
        """The step's value once it has ended, or its error; an interruption of the wait is held
        until then, and raised instead."""
        interrupted: BaseException | None = None
        while True:
            try:
                self._ended.wait()
                break
            except BaseException as exc:
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
