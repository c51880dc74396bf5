"""The sync runs that opened their mode's writer in this process: an interrupted CLI command
reads the record of its own sync (sync/interrupted.py), never one another process made meanwhile."""

from __future__ import annotations

from collections import deque

KEEP = 50  # the newest per mode: a long-lived process (a Dagster code server) runs many

_opened: dict[str, deque[str]] = {}


def note(mode: str, run_id: str) -> None:
    _opened.setdefault(mode, deque(maxlen=KEEP)).append(run_id)


def opened(mode: str) -> tuple[str, ...]:
    """The run ids of `mode` that opened their writer here (the newest KEEP), oldest first."""
    return tuple(_opened.get(mode, ()))
