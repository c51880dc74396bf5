"""JOFI API v2 client: HTTP only (no Dagster, no DuckDB). See client.py for the entry point.

Its names are imported when first asked for (PEP 562), so the client's defaults (config.py, shown
in the CLI's options) are read without the HTTP libraries the client loads: ~0.25 s of CPU at the
start of every command that makes no request (`status`, `sql`, `--help`, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as the modules below define them, for readers and tools
    from jofi_pipeline.api.client import JofiClient
    from jofi_pipeline.api.config import ClientConfig
    from jofi_pipeline.api.errors import (
        ApiKeyError,
        ApiUnreachableError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        InvalidIdError,
        JofiApiError,
        MalformedResponseError,
        ModeMismatchError,
        NotFoundError,
        RateLimitedError,
        ServerError,
        UnexpectedStatusError,
    )
    from jofi_pipeline.api.fanout import Outcome, fan_out
    from jofi_pipeline.api.lists import ListResult
    from jofi_pipeline.api.transport import RequestCounts

# Each public name -> the module of this package that defines it.
_DEFINED_IN = {
    "JofiClient": "client",
    "ClientConfig": "config",
    "ApiKeyError": "errors",
    "ApiUnreachableError": "errors",
    "AuthenticationError": "errors",
    "BadRequestError": "errors",
    "ConfigError": "errors",
    "InvalidIdError": "errors",
    "JofiApiError": "errors",
    "MalformedResponseError": "errors",
    "ModeMismatchError": "errors",
    "NotFoundError": "errors",
    "RateLimitedError": "errors",
    "ServerError": "errors",
    "UnexpectedStatusError": "errors",
    "Outcome": "fanout",
    "fan_out": "fanout",
    "ListResult": "lists",
    "RequestCounts": "transport",
}

__all__ = sorted(_DEFINED_IN)


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    """Every public name, imported yet or not (a module's own dir() shows only what it holds)."""
    return sorted({*globals(), *_DEFINED_IN})
