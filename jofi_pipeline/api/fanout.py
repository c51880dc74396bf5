"""Run one coroutine per item (thousands of scorecards) with bounded work in flight.

Items are pulled from the input lazily, at most `concurrency` at a time, so memory is bounded by
the concurrency and not by the number of items. Outcomes are yielded as they complete. A failure
of one item (404, exhausted retries, ...) becomes an `Outcome` with `error` set and the batch goes
on; an error marked `fatal` (bad key, wrong mode) would fail every further item the same way, so
it stops the batch and is raised.

Close the iterator when leaving early (`async with contextlib.aclosing(fan_out(...))`) so the
work still in flight is cancelled at once rather than when the generator is garbage-collected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Items in flight when the caller does not say. Generous on purpose: the client's semaphore still
# bounds the HTTP requests, so this only has to be at least the client's `max_concurrency`.
DEFAULT_FANOUT_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """What happened to one item: `value` when it worked, `error` when it did not."""

    item: T
    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class InFlight(dict):
    """A fan-out's work in flight (task -> item), for a caller that must cancel it without awaiting:
    a coroutine closed while the fan-out waits leaves the generator suspended on Python 3.11, so
    its own clean-up never runs."""

    def cancel_now(self) -> None:
        for task in self:
            with contextlib.suppress(RuntimeError):  # a closed loop: the task dies with it
                task.cancel()


async def fan_out(
    func: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int = DEFAULT_FANOUT_CONCURRENCY,
    in_flight: InFlight | None = None,
) -> AsyncIterator[Outcome[T, R]]:
    """Yield `Outcome(item, value, error)` for `func(item)` over all items, as they complete.

    `concurrency` bounds the items in flight; the client's own semaphore and rate limiter still
    bound the HTTP requests, so prefer `JofiClient.fan_out`, which uses the client's settings.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    next_item = _puller(items)
    in_flight = InFlight() if in_flight is None else in_flight
    finished = _Finished()
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < concurrency:
                try:
                    item = await next_item()
                except StopAsyncIteration:
                    exhausted = True
                    break
                task = asyncio.ensure_future(func(item))
                in_flight[task] = item
                task.add_done_callback(finished.add)
            if not in_flight:
                return
            await finished.wait()
            while finished:
                task = finished.popleft()
                item = in_flight.pop(task)
                if task.cancelled():
                    yield Outcome(item, error=asyncio.CancelledError("item was cancelled"))
                    continue
                error = task.exception()
                if error is None:
                    yield Outcome(item, value=task.result())
                elif not isinstance(error, Exception) or getattr(error, "fatal", False):
                    raise error
                else:
                    yield Outcome(item, error=error)
    finally:
        in_flight.cancel_now()
        if in_flight and _their_loop_runs(in_flight):  # else closed by hand, or at garbage collection
            await asyncio.gather(*in_flight, return_exceptions=True)


class _Finished(deque):
    """Tasks in the order they finished, each put here by its own done callback.

    `asyncio.wait` would do per finished task what costs as much as the tasks in flight: it adds
    a callback to every one of them and removes it again (at concurrency 64, more CPU than the
    rest of the fan-out's own work for an answer)."""

    def __init__(self) -> None:
        super().__init__()
        self._waiter: asyncio.Future[None] | None = None

    def add(self, task: asyncio.Future) -> None:
        self.append(task)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Return once at least one task has finished."""
        if not self:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


def _their_loop_runs(in_flight: InFlight) -> bool:
    """Whether awaiting the tasks can complete here: their own loop runs this code (not none, as
    when a coroutine is closed after a second interrupt, nor another loop of the same thread)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return all(task.get_loop() is running for task in in_flight)


def _puller(items: Iterable[T] | AsyncIterable[T]) -> Callable[[], Awaitable[T]]:
    """One `await next()` for sync and async inputs alike; raises StopAsyncIteration at the end."""
    if isinstance(items, AsyncIterable):
        iterator = aiter(items)
        return lambda: anext(iterator)
    sync_iterator = iter(items)

    async def next_sync() -> T:
        try:
            return next(sync_iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    return next_sync
