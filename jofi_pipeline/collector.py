"""Python's cyclic garbage collector in the CLI's own process: no walks over what start-up loads.

A CLI sync loads ~1,300 modules (Dagster, SQLAlchemy, alembic, pydantic, the definitions): well
over a million objects that live as long as the process. While they are being created, every full
collection walks all of them again, and the interpreter walks them once more on its way out; both
cost about as much CPU as importing Dagster itself (docs/notes/issue-13.md, "Follow-up 3"). So the
console script (`entry`), and only it (never a test calling `cli.main()` in its own process):
- pauses the collector from its first import until the command has loaded what it needs
  (`loaded()`: a sync calls it once the definitions and the Dagster instance are open, any other
  command before it starts);
- then freezes what exists (`gc.freeze()`: moved out of the collector's sight, never walked again)
  and collects as usual while the command works, so the run's own garbage is freed as before;
- freezes again just before the process exits.
Reference counting frees objects exactly as always; only the walks are skipped. Nothing is frozen
in a longer-lived process that calls the CLI (a test, a notebook): it would keep frozen garbage.
The tests' zygote (harness/zygote.py) freezes what it loaded before it forks, as this does.

While a sync runs (`sync_running`, any process), young objects are collected less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_own_process = False
_paused = False


def entry() -> None:
    """The console script's start: this process exists for one command."""
    global _own_process, _paused
    _own_process = True
    if gc.isenabled():
        gc.disable()
        _paused = True


def own_process() -> bool:
    """True in the console script's process: it runs one command and ends (a sync may fork then)."""
    return _own_process


def loaded() -> None:
    """What the command needs is loaded: keep it out of every later collection, collect again."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def exiting() -> None:
    """The process is about to end: spare the interpreter's last walk over everything."""
    if _own_process:
        gc.freeze()


# A sync allocates several container objects per field of every answer (parsed JSON, rows, Arrow
# input) and holds each batch until it is merged. With the default threshold (700) the collector
# walked the young objects every few requests and promoted each batch in flight to the older
# generations, which the next full collections walked again: ~10-15 % of a full sync's CPU
# (2,000 test takers, bare, one run each on a loaded machine). Collecting young objects every
# 20,000 allocations frees the same cyclic garbage, later; reference counting frees the rest as always.
SYNC_THRESHOLDS = (20_000, 20, 20)
_syncs_running = 0
_thresholds_before: tuple[int, int, int] | None = None


@contextlib.contextmanager
def sync_running() -> Iterator[None]:
    """Collect less often while a sync runs; the thresholds before come back when the last
    sync running in this process ends (syncs of two modes may overlap in one process)."""
    global _syncs_running, _thresholds_before
    if _syncs_running == 0:
        _thresholds_before = gc.get_threshold()
        gc.set_threshold(*(max(mine, theirs) for mine, theirs in zip(SYNC_THRESHOLDS, _thresholds_before)))
    _syncs_running += 1
    try:
        yield
    finally:
        _syncs_running -= 1
        if _syncs_running == 0 and _thresholds_before is not None:
            gc.set_threshold(*_thresholds_before)
            _thresholds_before = None
