"""A step noted as begun must end, or be forgotten: a closed run waits for every noted step
(`wait_for_steps`) before it records itself, closes and unlocks, so a step that never ran and
stayed noted would keep that wait, and the writer lock, for good."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from jofi_pipeline.sync.uninterrupted import note_steps, to_the_end, wait_for_steps


def _waits_at_most(begun: set, seconds: float) -> bool:
    """Whether `wait_for_steps(begun)` returns within `seconds` (run in a thread left behind if not)."""
    waiter = threading.Thread(target=wait_for_steps, args=(begun,), daemon=True)
    waiter.start()
    waiter.join(seconds)
    return not waiter.is_alive()


def test_a_step_the_executor_refuses_is_not_left_noted():
    async def main() -> set:
        begun = note_steps()
        await asyncio.get_running_loop().shutdown_default_executor()  # as at the end of asyncio.run
        with pytest.raises(RuntimeError):
            await to_the_end(lambda: "never runs")
        return begun

    begun = asyncio.run(main())
    assert begun == set() and _waits_at_most(begun, 5)


class _NeverStarts(concurrent.futures.ThreadPoolExecutor):
    """An executor whose work waits in its queue until cancelled (a thread never takes it up)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.queued: list[concurrent.futures.Future] = []

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.queued.append(future)
        return future


def test_a_step_cancelled_before_any_thread_took_it_is_not_left_noted():
    async def main() -> set:
        begun = note_steps()
        executor = _NeverStarts()
        asyncio.get_running_loop().set_default_executor(executor)
        step = asyncio.create_task(to_the_end(lambda: "never runs"))
        while not executor.queued:
            await asyncio.sleep(0)
        executor.queued[0].cancel()  # as an executor shut down with cancel_futures does
        with pytest.raises(asyncio.CancelledError):
            await step
        return begun

    begun = asyncio.run(main())
    assert begun == set() and _waits_at_most(begun, 5)


def test_a_step_never_taken_up_is_not_left_noted_when_its_run_is_closed():
    """Closed meanwhile (GeneratorExit: a second Ctrl-C broke out of asyncio.run's teardown)."""

    async def main() -> set:
        begun = note_steps()
        executor = _NeverStarts()
        asyncio.get_running_loop().set_default_executor(executor)
        step = to_the_end(lambda: "never runs")
        step.send(None)  # up to its wait, driven by hand: no task wakes it
        executor.queued[0].cancel()
        for _ in range(3):  # the executor's cancel reaches the step's future
            await asyncio.sleep(0)
        assert begun, "noted while it waits"
        step.close()
        return begun

    begun = asyncio.run(main())
    assert begun == set() and _waits_at_most(begun, 5)


def test_a_step_that_ran_is_forgotten_once_it_ended():
    async def main() -> tuple[set, object]:
        begun = note_steps()
        ended = await to_the_end(lambda: 42)
        return begun, ended.value()

    begun, value = asyncio.run(main())
    assert value == 42 and begun == set()
