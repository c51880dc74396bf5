"""Typed errors of the JOFI client.

Every error carries the HTTP status (if any), the route *template* (never a full URL) and, when
the body had JOFI's error shape (jofi-api.md 8.4), the JOFI error type and message. Messages are
built only from redacted text, so the API key can never reach str(), repr(), args or a traceback.

`fatal` marks errors that would hit every further request the same way (bad key, wrong mode,
bad config): a fan-out stops on them instead of failing item after item.
"""

from __future__ import annotations

import json
from typing import Any

from jofi_pipeline import entities
from jofi_pipeline.api.redact import redact_text

_BODY_SNIPPET_CHARS = 200


class JofiApiError(Exception):
    """Base of every error the client raises."""

    fatal = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        route: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.route = route
        self.error_type = error_type
        self.error_message = redact_text(error_message) if error_message is not None else None

    def __repr__(self) -> str:
        fields = [repr(self.message)]
        if self.status is not None:
            fields.append(f"status={self.status}")
        if self.route is not None:
            fields.append(f"route={self.route!r}")
        if self.error_type is not None:
            fields.append(f"error_type={self.error_type!r}")
        return f"{type(self).__name__}({', '.join(fields)})"


class ConfigError(JofiApiError, ValueError):
    """The client was set up wrong (key, mode, base URL, config); no request was made."""

    fatal = True


class ApiKeyError(ConfigError):
    """The API key is missing, blank, of unknown prefix, or of the other mode's prefix."""


class InvalidIdError(JofiApiError, entities.InvalidIdError):
    """An id that breaks the entity registry's rule: refused before any request was sent.

    Not fatal: in a fan-out it fails that one record (reported, asked again next run), not the batch.
    """


class AuthenticationError(JofiApiError):
    """401/403: JOFI refused the key. Not retried; the message names the env var to check."""

    fatal = True


class BadRequestError(JofiApiError):
    """400: the request itself is wrong (e.g. an unknown score profile `sp`)."""


class NotFoundError(JofiApiError):
    """404: no such record. A by-id fetch may treat it as "gone" without failing its batch."""


class UnexpectedStatusError(JofiApiError):
    """Any other non-retryable status (405, 409, 422, ...)."""


class RateLimitedError(JofiApiError):
    """429 after all retries, or a Retry-After longer than the client is willing to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(JofiApiError):
    """5xx after all retries."""


class ApiUnreachableError(JofiApiError):
    """Connect errors, timeouts or dropped connections after all retries."""


class MalformedResponseError(JofiApiError):
    """A 2xx whose body is not JSON or not the expected shape, after all retries."""


class ModeMismatchError(JofiApiError):
    """The response's top-level `mode` is not the client's mode (or is missing). Never retried."""

    fatal = True

    def __init__(self, message: str, *, expected: str, actual: object, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.expected = expected
        self.actual = actual


def describe_error_body(content: bytes) -> tuple[str | None, str | None]:
    """(JOFI error type, message) from any error body: 8.4 shape, other JSON, text, or nothing."""
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        return None, None
    try:
        body = json.loads(text)
    except ValueError:
        return None, _snippet(text)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error_type = error.get("type")
            message = error.get("message")
            return (
                str(error_type) if error_type is not None else None,
                _snippet(str(message)) if message is not None else _snippet(json.dumps(error)),
            )
        if isinstance(error, str):
            return None, _snippet(error)
        for key in ("message", "detail", "error_description"):
            if isinstance(body.get(key), str):
                return None, _snippet(body[key])
    return None, _snippet(text)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _BODY_SNIPPET_CHARS:
        text = text[:_BODY_SNIPPET_CHARS] + "..."
    return redact_text(text)
