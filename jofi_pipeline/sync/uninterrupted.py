"""Worker-thread steps that, once begun, end before the sync goes on, even when it is cancelled.

`asyncio.to_thread` stops the awaiting coroutine on cancellation (a Dagster run stopped, Ctrl-C),
not its thread. A publish went on switching the published version while the sync, believing it
had stopped, recorded "nothing was published", closed the writer's connection under the thread
and released the mode's writer lock (so a second sync could start writing). A merge went on
using the connection the failed run's record was then written through ("connection is busy").

`to_the_end` waits for the thread whatever arrives meanwhile and hands back how it really ended,
with the interruption: the caller records that true outcome, then raises the interruption, so
the run still ends interrupted.

A second interrupt can break out of asyncio.run's teardown while a step runs (the in-process
Dagster path): the abandoned coroutine is later closed (GeneratorExit, at garbage collection or
exit). It must not await again then, nor take GeneratorExit for the step's error: it waits for
the thread where it is (a step is bounded work) and lets GeneratorExit through; the caller reads
how the step ended from its `Outcome`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Ended(Generic[T]):
    """How a worker-thread step ended (its result or its own error), and what interrupted the
    wait for it (a cancellation, KeyboardInterrupt, Dagster's interruption), if anything did."""

    result: T | None = None
    error: Exception | None = None
    interruption: BaseException | None = None

    def value(self) -> T:
        """The result; else the interruption raised (the step has ended), else the step's error."""
        if self.interruption is not None:
            raise self.interruption
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Outcome(Generic[T]):
    """How a step's thread ended, noted by the thread itself: known to a frame closed while it
    waited (GeneratorExit), which gets no result from the await."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class _Once:
    """The call, let go of as it starts: the executor's worker thread drops its work item (and with
    it the arguments, a merged batch's list items) only a moment after the step's result is handed
    back, so the run could go on into the by-id fetches with that batch still alive. Notes how the
    call ended in `outcome`."""

    def __init__(self, call: Callable[[], T], outcome: Outcome) -> None:
        self._call: Callable[[], T] | None = call
        self._outcome = outcome

    def __call__(self) -> T:
        call, self._call = self._call, None
        assert call is not None, "a step runs once"
        try:
            self._outcome.result = result = call()
            return result
        except BaseException as exc:
            self._outcome.error = exc
            raise
        finally:
            self._outcome.ended.set()


# The steps a run has begun and not yet seen end; set by the run, seen by the tasks it starts (a
# task copies its creator's context), so a fan-out's merges, in tasks of their own, are noted too.
_BEGUN: contextvars.ContextVar[set[Outcome] | None] = contextvars.ContextVar("jofi_steps_begun", default=None)


def note_steps() -> set[Outcome]:
    """From here on in this context, and in the tasks it starts, every step begun is noted until it
    ends: a run closed while it waited for something else (GeneratorExit) waits for them before it
    records itself through, closes and unlocks the connection their threads use."""
    begun: set[Outcome] = set()
    _BEGUN.set(begun)
    return begun


def wait_for_steps(begun: set[Outcome]) -> None:
    """Block until every step noted in `begun` has ended (a closed run has no loop to await on)."""
    for outcome in list(begun):
        outcome.ended.wait()


async def to_the_end(work: Callable[..., T], *args: Any, outcome: Outcome | None = None) -> Ended[T]:
    """Run `work(*args)` in a worker thread (as asyncio.to_thread does) and wait until it has ended,
    however often the wait is cancelled or interrupted meanwhile. Closed meanwhile (GeneratorExit),
    it waits for the thread without the loop, then lets GeneratorExit through. A step that never
    runs (refused by the executor, or cancelled by it before a thread took it up) raises at once,
    and is no longer noted as begun."""
    loop = asyncio.get_running_loop()
    outcome = outcome if outcome is not None else Outcome()
    begun = _BEGUN.get()
    if begun is not None:
        begun.add(outcome)
    try:
        # An executor future, not a Task: asyncio.run's teardown cancels every task, never this.
        # Awaited only through `shield`, so it is cancelled only when its executor cancelled the
        # work before a thread took it up: `running.cancelled()` below means "never ran".
        running = loop.run_in_executor(None, _Once(functools.partial(contextvars.copy_context().run, work, *args), outcome))
    except RuntimeError:  # refused (the loop closed, the executor shut down): it will never run
        # Only a refusal: an interrupt that lands here may come after the work was queued, and a
        # step forgotten while its thread runs is the very thing this module prevents.
        _forget(begun, outcome)
        raise
    interruption: BaseException | None = None
    while True:
        try:
            result = await asyncio.shield(running)
        except Exception as exc:  # the step's own error: no interruption is an Exception
            _forget(begun, outcome)
            return Ended(error=exc, interruption=interruption)
        except GeneratorExit:  # closed, its loop gone: awaiting again is not allowed
            if running.cancelled():  # the thread never took it up: nothing runs
                _forget(begun, outcome)
            else:
                outcome.ended.wait()  # the connection stays open and the lock held until the step ends
            raise
        except BaseException as exc:
            if running.done() and (running.cancelled() or running.exception() is exc):
                if running.cancelled():  # never taken up: its `ended` will never be set
                    _forget(begun, outcome)
                raise  # the step itself ended so: nothing is left running to wait for
            interruption = interruption or exc  # the thread goes on: wait for it again
            continue
        _forget(begun, outcome)
        return Ended(result=result, interruption=interruption)


def _forget(begun: set[Outcome] | None, outcome: Outcome) -> None:
    """No longer noted as begun: it ended, or it will never run (`wait_for_steps` would wait for good)."""
    if begun is not None:
        begun.discard(outcome)
