"""Dagster's interruption landing inside a DuckDB statement: what DuckDB makes of it, and what
sync/swallowed.py makes of that. Real DuckDB, Dagster's own signal handling, a real SIGINT."""

from __future__ import annotations

import signal

import dagster as dg
import duckdb
import pytest

from jofi_pipeline.sync import swallowed
from jofi_pipeline_tests.signal_in_statement import StatementSignal, handlers_kept


@pytest.fixture(autouse=True)
def signal_handlers_kept():
    with handlers_kept():
        yield


def test_duckdb_raises_its_own_error_in_place_of_dagsters_interruption_which_is_lost():
    """What the fix rests on: DuckDB runs Dagster's handler inside the statement, then raises
    RuntimeError("Query interrupted"), and Dagster's exception is gone (neither chained nor pending)."""
    statement = StatementSignal()
    with duckdb.connect() as con, dg.raise_execution_interrupts():
        with pytest.raises(RuntimeError, match="^Query interrupted$") as raised:
            statement.run(con)
    assert statement.sent.is_set() and statement.raised is raised.value
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert swallowed.behind(raised.value) is None  # not noted: nothing to say it was Dagster's


def test_noted_the_duckdb_error_stands_for_dagsters_interruption():
    statement = StatementSignal()
    with duckdb.connect() as con, dg.raise_execution_interrupts(), swallowed.noting():
        with pytest.raises(RuntimeError, match="^Query interrupted$") as raised:
            statement.run(con)
        stop = swallowed.behind(raised.value)
        assert isinstance(stop, dg.DagsterExecutionInterruptedError), stop
        assert swallowed.behind(BaseExceptionGroup("g", [ValueError("x"), raised.value])) is stop  # a task's, grouped
        assert swallowed.behind(RuntimeError("another error")) is None  # only DuckDB's interrupt stands for it
        with pytest.raises(dg.DagsterExecutionInterruptedError) as reraised:
            swallowed.reraise(raised.value)
        assert reraised.value is stop and reraised.value.__cause__ is raised.value
    assert swallowed.behind(raised.value) is None  # forgotten once the block ends


def test_ctrl_c_inside_a_statement_is_left_as_it_was():
    """No Dagster interruption behind it (the default handler's KeyboardInterrupt): unchanged."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    statement = StatementSignal()
    with duckdb.connect() as con, swallowed.noting():
        # left in place: asyncio.run turns Ctrl-C into a cancel only while Python's own handler is
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(RuntimeError, match="^Query interrupted$") as raised:
            statement.run(con)
        assert swallowed.behind(raised.value) is None
        swallowed.reraise(raised.value)  # returns: the caller goes on with DuckDB's error


def test_the_handlers_are_put_back_unless_replaced_meanwhile():
    with dg.raise_execution_interrupts():
        dagsters = signal.getsignal(signal.SIGINT)
        with swallowed.noting():
            assert signal.getsignal(signal.SIGINT) is not dagsters
            assert signal.getsignal(signal.SIGTERM) is not dagsters
        assert signal.getsignal(signal.SIGINT) is dagsters and signal.getsignal(signal.SIGTERM) is dagsters
        with swallowed.noting():
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as Dagster restoring its own
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
