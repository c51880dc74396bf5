"""A SIGINT delivered while the main thread is inside a DuckDB statement's execution, every time.

Sent as Dagster's run cancellation thread stops a run (dagster_shared.ipc.send_interrupt: os.kill
of its own pid), from another thread, once the statement has made progress (the connection's
`query_progress()`): by then the client's own Python calls before the query (it checks its
arguments with isinstance, where a pending handler would run and raise as itself) are over, and
the next Python code the main thread runs is the handler, from DuckDB's check of pending signals.
The statement takes seconds: it is still running when the signal lands, however slow the machine.

It runs on one thread, the calling one, a few chunks per step with the check between steps:
handed to a worker thread of DuckDB's, the calling thread waits for the whole statement and
checks only when it has ended.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

# Seconds of work (~1.5 s per 10^9 rows on one thread), stopped by the signal within milliseconds.
SLOW = "SELECT sum(range) FROM range(10_000_000_000)"
WAIT_FOR_PROGRESS = 30.0  # seconds the sender waits for the statement to get going


@dataclass
class StatementSignal:
    """One statement run on the main thread with a SIGINT delivered inside it; what came out."""

    sent: threading.Event = field(default_factory=threading.Event)
    raised: BaseException | None = None
    returned: bool = False

    def run(self, con: duckdb.DuckDBPyConnection, sql: str = SLOW) -> None:
        """Run `sql` on `con`, signalled inside; note what it raised, and raise it on."""
        assert threading.current_thread() is threading.main_thread(), "signal handlers run on the main thread only"
        threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
        con.execute("SET threads = 1")
        con.execute("SET enable_progress_bar = true")  # query_progress() says -1 without it
        con.execute("SET enable_progress_bar_print = false")
        sender = threading.Thread(target=self._send_inside, args=(con,), daemon=True)
        sender.start()
        try:
            con.execute(sql).fetchall()
            self.returned = True
        except BaseException as exc:
            self.raised = exc
            raise
        finally:
            sender.join()
            con.execute("RESET enable_progress_bar")
            con.execute("RESET enable_progress_bar_print")
            con.execute(f"SET threads = {threads}")

    def _send_inside(self, con: duckdb.DuckDBPyConnection) -> None:
        deadline = time.monotonic() + WAIT_FOR_PROGRESS
        while time.monotonic() < deadline:
            if con.query_progress() > 0:
                os.kill(os.getpid(), signal.SIGINT)
                self.sent.set()
                return
            time.sleep(0.001)


@contextmanager
def handlers_kept() -> Iterator[None]:
    """Dagster leaves SIGTERM mapped to the SIGINT handler it found; what follows gets them as they were."""
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)
