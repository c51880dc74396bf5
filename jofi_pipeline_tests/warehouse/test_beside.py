"""A step run beside the caller's own work (beside.py): its value or its error comes back, and an
interruption of the wait goes on only once the step has ended (it may read through a connection
the caller closes next)."""

from __future__ import annotations

import threading
import time

import pytest

from jofi_pipeline.warehouse.beside import Beside
from jofi_pipeline_tests.warehouse.conftest import interrupted_once


class Stop(BaseException):
    """Stands for Dagster's interruption or a second Ctrl-C (a BaseException, as they are)."""


def test_the_steps_value_or_its_own_error_comes_back_and_it_ran_in_its_own_thread():
    ran_in: list[str] = []

    def step() -> int:
        ran_in.append(threading.current_thread().name)
        return 42

    assert Beside(step, "side-step").result() == 42
    assert ran_in == ["side-step"]

    def failing() -> None:
        raise ValueError("the step's own error")

    beside = Beside(failing, "side-step")
    with pytest.raises(ValueError, match="the step's own error"):
        beside.result()
    assert beside.ended.is_set()


@pytest.mark.timeout(30)
def test_an_interrupted_wait_goes_on_only_once_the_step_has_ended():
    release, ended = threading.Event(), threading.Event()

    def step() -> str:
        release.wait(10)
        ended.set()
        return "done"

    with interrupted_once(0.1, release, Stop):  # lands inside result()
        beside = Beside(step, "side-step")
        started = time.monotonic()
        with pytest.raises(Stop):
            beside.result()
        assert ended.is_set(), "the interruption went on only once the step had ended"
        assert time.monotonic() - started >= 0.25
