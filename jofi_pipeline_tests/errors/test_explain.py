"""explain(): one actionable line out of whatever a run raised, groups from concurrent work included."""

from __future__ import annotations

import asyncio

import pytest

from jofi_pipeline.api import errors as api
from jofi_pipeline.sync.explain import INTERRUPTED, expected, explain, leaves
from jofi_pipeline.sync.report import SyncFailed
from jofi_pipeline.warehouse import WarehouseBusyError


def _server(route: str, status: int = 503) -> api.ServerError:
    return api.ServerError(f"GET {route}: JOFI server error ({status}) persisted after 3 retries", status=status, route=route)


def _mode(route: str) -> api.ModeMismatchError:
    return api.ModeMismatchError(
        f"GET {route}: the response says mode 'test' but this client runs in live mode", expected="live", actual="test", route=route
    )


def test_a_group_of_one_is_its_error():
    group = ExceptionGroup("unhandled errors in a TaskGroup", [_server("/teams")])
    line = explain(group)
    assert line == "GET /teams: JOFI server error (503) persisted after 3 retries"
    assert "ExceptionGroup" not in line and "TaskGroup" not in line


def test_the_most_actionable_error_comes_first_and_the_others_are_counted():
    malformed = api.MalformedResponseError("GET /users: JOFI answered 200 but the body is not valid JSON", route="/users", status=200)
    group = ExceptionGroup("g", [_server("/teams"), malformed, ExceptionGroup("inner", [_mode("/invitations")])])
    line = explain(group)
    assert line.startswith("GET /invitations: the response says mode 'test'")
    assert line.endswith("; and 2 more: GET /teams server error 503, GET /users malformed answer 200")


def test_auth_beats_server_errors_and_names_the_env_var():
    auth = api.AuthenticationError("GET /users: JOFI refused the API key (401); check JOFI_LIVE_API_KEY", status=401, route="/users")
    line = explain(BaseExceptionGroup("g", [_server("/teams"), auth]))
    assert line.startswith("GET /users: JOFI refused the API key (401); check JOFI_LIVE_API_KEY")
    assert "and 1 more: GET /teams server error 503" in line


def test_storage_beats_the_api_and_many_others_are_shortened():
    busy = WarehouseBusyError("the 'live' warehouse is being written by another sync; wait and retry. Lock file: /d/live/work/writer.lock")
    group = ExceptionGroup("g", [_server(f"/r{i}") for i in range(5)] + [busy])
    line = explain(group)
    assert line.startswith("the 'live' warehouse is being written")
    assert "and 5 more: GET /r0 server error 503, GET /r1 server error 503, GET /r2 server error 503, ..." in line


def test_cancellations_are_not_errors_and_repeats_count_once():
    group = BaseExceptionGroup("g", [asyncio.CancelledError(), _server("/teams"), _server("/teams")])
    assert leaves(group)[0].route == "/teams"
    assert explain(group) == "GET /teams: JOFI server error (503) persisted after 3 retries"


def _dagster_interruption() -> BaseException:
    """What Dagster raises in a run worker whose run was terminated (the UI's Terminate, run monitoring)."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    return DagsterExecutionInterruptedError("Execution was interrupted unexpectedly.")


@pytest.mark.parametrize("exc", [
    asyncio.CancelledError(),
    KeyboardInterrupt(),
    BaseExceptionGroup("g", [asyncio.CancelledError(), BaseExceptionGroup("inner", [KeyboardInterrupt()])]),
    # A terminated run's sync recorded "DagsterExecutionInterruptedError" in sync_runs and `status`
    # when the termination reached it outside the asyncio loop (1 stop in 10 UI terminations).
    _dagster_interruption(),
    BaseExceptionGroup("g", [asyncio.CancelledError(), _dagster_interruption()]),
])
def test_an_interrupted_sync_says_so_in_words_not_in_class_names(exc):
    line = explain(exc)
    assert line == INTERRUPTED
    assert "nothing was published" in line and "Error" not in line and "Interrupt" not in line


def test_an_error_beside_cancellations_is_still_the_line():
    group = BaseExceptionGroup("g", [KeyboardInterrupt(), _server("/teams")])
    assert explain(group).startswith("GET /teams: JOFI server error (503)")


def test_a_sync_failed_reason_and_a_bug_are_one_line_each():
    assert explain(SyncFailed("score profile X is not enabled")) == "score profile X is not enabled"
    line = explain(ExceptionGroup("g", [RuntimeError("first line\nsecond line")]))
    assert line == "RuntimeError: first line"


def test_no_key_survives_explain():
    leak = RuntimeError("boom sk_live_abcdefghijklmnop1234")
    assert "abcdefghijklmnop1234" not in explain(ExceptionGroup("g", [leak]))


@pytest.mark.parametrize(
    ("exc", "is_expected"),
    [
        (ExceptionGroup("g", [_server("/teams")]), True),
        (ExceptionGroup("g", [_server("/teams"), TypeError("bug")]), False),
        (SyncFailed("x"), True),
        (ValueError("bug"), False),
    ],
)
def test_expected_tells_our_errors_from_bugs(exc, is_expected):
    assert expected(exc) is is_expected
    wrapped = SyncFailed("x")
    wrapped.__cause__ = exc
    assert expected(wrapped) is is_expected
