"""A sync's error crosses from the head-started sync's process to the op's as it was raised:
same class, message, attributes and cause chain, so the op judges it exactly as its own."""

from __future__ import annotations

import pickle
import threading

import pytest

from jofi_pipeline.api.errors import AuthenticationError, ModeMismatchError, ServerError
from jofi_pipeline.sync import portable
from jofi_pipeline.sync.explain import expected, explain
from jofi_pipeline.sync.report import SyncFailed
from jofi_pipeline.warehouse.errors import PublishRefusedError
from jofi_pipeline.warehouse.integrity import Finding


def crossed(exc: BaseException) -> tuple[BaseException, str]:
    return portable.loads(portable.exception_message(exc))


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("exc", [
    ModeMismatchError("live key, test answer", expected="live", actual="test", status=200, route="/account"),
    PublishRefusedError("publish refused", [Finding("mode_pure", "users", False, True, {"rows_of_other_modes": 1})]),
    ExceptionGroup("lists", [ServerError("GET /users 503", status=503, route="/users"), AuthenticationError("key refused", status=401)]),
])
def test_errors_whose_constructors_take_more_than_their_message_cross_whole(exc):
    if not isinstance(exc, ExceptionGroup):
        with pytest.raises(TypeError):  # why plain pickling is not enough
            pickle.loads(pickle.dumps(exc))
    back, _ = crossed(exc)
    assert type(back) is type(exc) and repr(back.args) == repr(exc.args) and repr(back.__dict__) == repr(exc.__dict__)
    assert explain(back) == explain(exc) and expected(back) == expected(exc) is True


def test_a_bug_behind_a_sync_failed_stays_a_bug_with_its_traceback_text():
    bug = raised(ZeroDivisionError("division by zero"))
    failed = SyncFailed("ZeroDivisionError: division by zero", run_id="live-1")
    failed.__cause__ = bug
    back, text = crossed(raised(failed))
    assert (back.reason, back.run_id, back.findings) == ("ZeroDivisionError: division by zero", "live-1", [])
    assert type(back.__cause__) is ZeroDivisionError and not expected(back)
    assert "in raised" in text and "ZeroDivisionError: division by zero" in text


def test_what_cannot_be_pickled_arrives_as_a_stand_in_named_and_worded_as_the_original():
    class Holding(Exception):
        def __init__(self) -> None:
            super().__init__("held a lock")
            self.lock = threading.Lock()

    back, _ = crossed(Holding())
    assert isinstance(back, portable.StandIn) and type(back).__name__ == "Holding"
    assert explain(back) == "Holding: held a lock" and not expected(back)
