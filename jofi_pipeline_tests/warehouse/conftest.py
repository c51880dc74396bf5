from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jofi_pipeline.warehouse import RunWriter, WarehouseStore

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)


@pytest.fixture
def store(tmp_path: Path) -> WarehouseStore:
    return WarehouseStore(tmp_path / "data", "live")


@pytest.fixture
def writer(store: WarehouseStore) -> Iterator[RunWriter]:
    with store.open_run("run-1", T0) as run:
        yield run


def spy(monkeypatch, module, name: str, record: Callable[..., None]) -> None:
    """`module.name` still does its work; `record(*args, **kwargs)` hears of every call first."""
    real = getattr(module, name)

    def spied(*args, **kwargs):
        record(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spied)


@contextlib.contextmanager
def interrupted_once(after: float, release: threading.Event, stop: type[BaseException]) -> Iterator[None]:
    """`stop` raised in this (the main) thread `after` seconds in, as Dagster's stop or a second
    Ctrl-C lands; `release` (what lets the step under test end) is set 0.2 s after it, so the step
    ends after the interruption, not before; and at the end whatever happened."""

    def handler(signum, frame):
        threading.Timer(0.2, release.set).start()
        raise stop()

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, after)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()
