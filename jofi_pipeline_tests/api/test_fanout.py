"""fan_out: bounded, lazy, one failure does not sink the batch, fatal errors stop it."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from jofi_pipeline.api import AuthenticationError, ClientConfig, NotFoundError, Outcome, fan_out

from .helpers import error, make_client, ok


async def test_a_404_inside_a_fan_out_is_one_outcome_not_a_failed_batch():
    def handler(request: httpx.Request) -> httpx.Response:
        tt = int(request.url.path.split("/")[-2])
        if tt % 10 == 3:
            return error(404, "not_found_error", "no such test taker")
        return ok({"mode": "live", "object": "scorecard", "test_taker_id": tt})

    async with make_client(handler, config=ClientConfig(max_concurrency=8)) as client:
        outcomes = [o async for o in client.fan_out(lambda tt: client.get("scorecards", (tt, "JOFI-295-AS")), range(1, 101))]
    assert len(outcomes) == 100
    failed = {o.item for o in outcomes if not o.ok}
    assert failed == set(range(3, 100, 10))
    assert all(isinstance(o.error, NotFoundError) for o in outcomes if not o.ok)
    assert all(o.value["test_taker_id"] == o.item for o in outcomes if o.ok)


async def test_input_is_consumed_lazily_and_in_flight_is_bounded():
    pulled = 0
    active = peak = 0

    def items():
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    async def work(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0)
        active -= 1
        return i * 2

    done = 0
    async with contextlib.aclosing(fan_out(work, items(), concurrency=4)) as outcomes:
        async for outcome in outcomes:
            done += 1
            assert pulled - done <= 4  # never more than `concurrency` items ahead of the consumer
            assert outcome.value == outcome.item * 2
    assert done == 1000 and peak <= 4


async def test_async_iterable_input():
    async def items():
        for i in range(50):
            await asyncio.sleep(0)
            yield i

    async def work(i):
        return -i

    got = sorted([o.value async for o in fan_out(work, items(), concurrency=5)])
    assert got == sorted(-i for i in range(50))


async def test_generic_exceptions_become_outcomes():
    async def work(i):
        if i == 2:
            raise RuntimeError("one bad item")
        return i

    outcomes = [o async for o in fan_out(work, range(5), concurrency=2)]
    assert [o.item for o in outcomes if o.error] == [2]
    assert isinstance(outcomes[[o.item for o in outcomes].index(2)].error, RuntimeError)


async def test_fatal_error_stops_the_batch_and_cancels_work_in_flight():
    started = []
    cancelled = []

    async def work(i):
        started.append(i)
        if i == 3:
            raise AuthenticationError("key refused; check JOFI_LIVE_API_KEY", status=401)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    with pytest.raises(AuthenticationError):
        async for _ in fan_out(work, range(10_000), concurrency=4):
            pass
    assert len(started) <= 8 and cancelled  # stopped early; sleeping siblings were cancelled


async def test_closing_early_cancels_in_flight_work():
    cancelled = []

    async def work(i):
        if i == 0:
            return i
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async with contextlib.aclosing(fan_out(work, range(100), concurrency=3)) as outcomes:
        async for outcome in outcomes:
            assert outcome == Outcome(0, value=0)
            break
    assert sorted(cancelled) == [1, 2]  # item 3 was never started: refills wait for the consumer


def test_concurrency_must_be_positive():
    with pytest.raises(ValueError):
        fan_out(lambda i: i, [], concurrency=0).__anext__().send(None)


def test_closed_without_a_loop_it_cancels_its_work_and_awaits_nothing():
    """A coroutine closed after a second interrupt closes its fan-out with no loop to run: awaiting the
    cancelled work then would be "ignored GeneratorExit", the generator left half-closed."""
    loop = asyncio.new_event_loop()
    started: list[asyncio.Task] = []

    async def never_answered(item: int) -> int:
        started.append(asyncio.current_task())
        await asyncio.Event().wait()
        return item

    async def quick_then_slow(item: int) -> int:
        if item == 0:
            return 0
        return await never_answered(item)

    outcomes = fan_out(quick_then_slow, range(5), concurrency=5)
    first = loop.run_until_complete(anext(outcomes))  # suspended at its yield, four items in flight
    assert first.value == 0 and len(started) == 4
    closing = outcomes.aclose()
    with pytest.raises(StopIteration):  # one step, no await: it ended
        closing.send(None)
    assert all(task.cancelling() for task in started)
    loop.run_until_complete(asyncio.sleep(0))  # the cancellations, delivered
    assert all(task.cancelled() for task in started)
    loop.close()


async def test_outcomes_come_in_the_order_their_work_finished_and_no_finish_touches_the_rest(monkeypatch):
    """Each finished task reports itself: `asyncio.wait` per finish would add and remove a callback
    on every task in flight (at concurrency 64, more CPU per answer than the fan-out's other work)."""

    # Finished in an order set by events, not by timers 4 ms apart: on a loaded machine the tasks'
    # starts drifted more than that, and the timers fired out of the intended order.
    released = [asyncio.Event() for _ in range(20)]
    waiting = asyncio.Event()
    started: list[int] = []

    async def held(i: int) -> int:
        started.append(i)
        if len(started) == len(released):
            waiting.set()
        await released[i].wait()
        return i

    async def release_last_first() -> None:
        await waiting.wait()
        for i in reversed(range(20)):
            released[i].set()
            await asyncio.sleep(0)  # task i ends before the next is let go

    def no_wait(*args, **kwargs):
        raise AssertionError("asyncio.wait was called")

    monkeypatch.setattr(asyncio, "wait", no_wait)
    releasing = asyncio.create_task(release_last_first())
    outcomes = [o async for o in fan_out(held, range(20), concurrency=20)]
    await releasing
    assert [o.value for o in outcomes] == list(range(19, -1, -1))
