"""One line for a failure, however it arrived: a typed error, or a group of them from concurrent work.

The lists are read side by side in a TaskGroup: when one read fails the others are cancelled and
Python raises an ExceptionGroup whose own text ("unhandled errors in a TaskGroup (1
sub-exception)") says nothing. `explain` opens the group, puts first the error a person can act
on first (a mode mismatch, then a key or config problem, storage, a rate limit, a server error,
a malformed answer, an unreachable API), and counts the rest: "...; and 2 more: GET /users
malformed answer, GET /teams server error 503". The CLI, `sync_runs.error`, the attempts record
and the Dagster failure all show this same line.
"""

from __future__ import annotations

import asyncio

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.api import errors as api
from jofi_pipeline.sync.report import SyncFailed
from jofi_pipeline.warehouse import errors as warehouse
from jofi_pipeline.webhooks.inbox import InboxError

# Errors the project raises on purpose: their messages already say what to do.
OURS: tuple[type[BaseException], ...] = (api.JofiApiError, warehouse.WarehouseError, InboxError, SyncFailed)
# Most actionable first: what a person must fix before anything else can work.
_RANK: tuple[type[BaseException], ...] = (
    api.ModeMismatchError,
    warehouse.ModeMismatchError,
    api.ConfigError,
    api.AuthenticationError,
    warehouse.WarehouseError,
    InboxError,
    api.RateLimitedError,
    api.ServerError,
    api.MalformedResponseError,
    api.ApiUnreachableError,
    api.JofiApiError,
    SyncFailed,
    OSError,
)
MAX_OTHERS_NAMED = 3


def leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside `exc` (itself when it is no group), cancellations left out."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    if isinstance(exc, asyncio.CancelledError):
        return []
    return [exc]


def expected(exc: BaseException) -> bool:
    """True when every error in `exc` is one the project raises on purpose (no bug behind it)."""
    if isinstance(exc, SyncFailed) and exc.__cause__ is not None:
        return expected(exc.__cause__)
    found = leaves(exc)
    return bool(found) and all(isinstance(e, OURS) for e in found)


# What a cancelled or interrupted sync says (`status`, sync_runs, the run's failure) instead of
# Python's "CancelledError" or "KeyboardInterrupt".
INTERRUPTED = ("the sync was interrupted before it finished (Ctrl-C, or its run was stopped): nothing was "
               "published; what it had fetched is kept for the next sync")


# Dagster's own interruption of a terminated run (the UI's Terminate, run monitoring), by name:
# the sync does not import Dagster (a BaseException of dagster._core.errors).
DAGSTER_INTERRUPTION = "DagsterExecutionInterruptedError"


def is_dagster_interruption(exc: BaseException) -> bool:
    """True when `exc` is Dagster's interruption of a terminated run (or a subclass of it)."""
    return any(cls.__name__ == DAGSTER_INTERRUPTION for cls in type(exc).__mro__)


def interrupted(exc: BaseException) -> bool:
    """True when `exc` is only cancellations and interruptions, however grouped (no error inside)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(interrupted(sub) for sub in exc.exceptions)
    return isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) or is_dagster_interruption(exc)


def explain(exc: BaseException) -> str:
    """The most actionable error's message, and "and N more" naming the others; never the key."""
    if interrupted(exc):
        return INTERRUPTED
    found = _distinct(leaves(exc)) or [exc]
    first = min(found, key=_rank)
    line = describe(first)
    others = [e for e in found if e is not first]
    if others:
        named = ", ".join(_short(e) for e in others[:MAX_OTHERS_NAMED])
        line += f"; and {len(others)} more: {named}" + (", ..." if len(others) > MAX_OTHERS_NAMED else "")
    return settings.redact_keys(line)


def describe(exc: BaseException) -> str:
    """One error as one line: our own errors' messages as they are, anything else with its type."""
    if isinstance(exc, SyncFailed):
        text = exc.reason
    elif isinstance(exc, duckdb.OutOfMemoryException):  # DuckDB's advice names SET statements nobody can run here
        text = warehouse.out_of_memory(exc)
    elif isinstance(exc, OURS):
        text = str(exc)
    else:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        text = f"{type(exc).__name__}: {first.strip()}" if first else type(exc).__name__
    return " ".join(text.split())


def _rank(exc: BaseException) -> int:
    return next((i for i, cls in enumerate(_RANK) if isinstance(exc, cls)), len(_RANK))


def _short(exc: BaseException) -> str:
    """e.g. `GET /users malformed answer`: enough to say which other route failed and how."""
    # The client's errors name their own kind (api/errors.py `label`); anything else, its class.
    what = (exc.label if isinstance(exc, api.JofiApiError) else None) or type(exc).__name__
    route = getattr(exc, "route", None)
    status = getattr(exc, "status", None)
    parts = [f"GET {route}" if route else None, what, str(status) if status else None]
    return " ".join(p for p in parts if p)


def _distinct(found: list[BaseException]) -> list[BaseException]:
    """One of each message (a revoked key fails every list read alike)."""
    seen: dict[str, BaseException] = {}
    for exc in found:
        seen.setdefault(f"{type(exc).__name__}:{exc}", exc)
    return list(seen.values())
