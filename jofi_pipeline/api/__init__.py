"""JOFI API v2 client: HTTP only (no Dagster, no DuckDB). See client.py for the entry point."""

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

__all__ = [
    "ApiKeyError",
    "ApiUnreachableError",
    "AuthenticationError",
    "BadRequestError",
    "ClientConfig",
    "ConfigError",
    "InvalidIdError",
    "JofiApiError",
    "JofiClient",
    "ListResult",
    "MalformedResponseError",
    "ModeMismatchError",
    "NotFoundError",
    "Outcome",
    "RateLimitedError",
    "RequestCounts",
    "ServerError",
    "UnexpectedStatusError",
    "fan_out",
]
