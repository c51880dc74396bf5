"""A sync's outcome across a process boundary: its report, or its exception with what explains it.

A pickled exception is rebuilt by calling its class with its `args`, which fails for errors whose
constructors take more (ModeMismatchError, PublishRefusedError) and keeps neither `__cause__` (by
which `explain.expected` tells a bug behind a SyncFailed) nor the traceback. Here an exception is
rebuilt without its constructor: same class, args, attributes and cause chain; the child's
traceback text travels along, for a bug's failure to show where it happened. What cannot be
pickled at all arrives as a stand-in of the same class name and message.
"""

from __future__ import annotations

import io
import pickle
import traceback
from typing import Any

MAX_CHAIN = 20


class SyncProcessTraceback(Exception):
    """Where the error happened, in the sync's own process: its traceback as text."""


def dumps(value: Any) -> bytes:
    """`value` pickled, exceptions (anywhere in it) with their class, args, attributes and cause."""
    buffer = io.BytesIO()
    _Pickler(buffer, pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def exception_message(exc: BaseException) -> bytes:
    """`exc` for the other process: (the exception, its traceback text); a stand-in if need be."""
    text = "".join(traceback.format_exception(exc))
    try:
        data = dumps((exc, text))
        loads(data)  # rebuilt here first: the other side must never fail to read it
        return data
    except Exception:
        return dumps((_stand_in(exc), text))


def _stand_in(exc: BaseException, depth: int = 0) -> _StandInSpec:
    cause = exc.__cause__ if depth < MAX_CHAIN else None
    return _StandInSpec(type(exc).__name__, type(exc).__module__, str(exc),
                        _stand_in(cause, depth + 1) if cause is not None else None)


class StandIn(Exception):
    """An exception whose class or contents could not cross: same class name and message."""


class _StandInSpec:
    """Pickles to a StandIn subclass named as the original (explain.describe names the class)."""

    def __init__(self, name: str, module: str, message: str, cause: _StandInSpec | None) -> None:
        self.parts = (name, module, message, cause)

    def __reduce__(self):
        return _stand_in_for, self.parts


def _stand_in_for(name: str, module: str, message: str, cause: BaseException | None) -> StandIn:
    exc = type(name, (StandIn,), {"__module__": module})(message)
    exc.__cause__ = cause
    return exc


def _rebuild(cls: type, args: tuple, state: dict, cause: BaseException | None) -> BaseException:
    exc = cls.__new__(cls, *args)  # BaseException.__new__ sets args; the constructor is not run
    exc.args = args
    exc.__dict__.update(state)
    exc.__cause__ = cause
    return exc


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any):
        if isinstance(obj, BaseException):
            return _rebuild, (type(obj), obj.args, dict(getattr(obj, "__dict__", {})), obj.__cause__)
        return NotImplemented

