"""Typed errors of the JOFI client.

Every error carries the HTTP status (if any), the route *template* (never a full URL) and, when
the body had JOFI's error shape (jofi-api.md 8.4), the JOFI error type and message. Messages are
built only from redacted text, so the API key can never reach str(), repr(), args or a traceback.

`fatal` marks errors that would hit every further request the same way (bad key, wrong mode,
bad config): a fan-out stops on them instead of failing item after item.

The constructors at the end write the message of every error about an answer (or its absence),
as openai-python's `_exceptions.py` keeps them together: the transport and the client only decide
which one applies. (The key and base-URL checks keep their messages next to the check itself.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jofi_pipeline import entities, settings
from jofi_pipeline.api.redact import redact_text, safe_url

_BODY_SNIPPET_CHARS = 200


class JofiApiError(Exception):
    """Base of every error the client raises."""

    fatal = False
    # A few words naming the kind of failure, where a line lists other failures after the first
    # (sync/explain.py: "...; and 2 more: GET /users malformed answer, GET /teams server error 503").
    label: str | None = None

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
    label = "key refused"


class BadRequestError(JofiApiError):
    """400: the request itself is wrong (e.g. an unknown score profile `sp`)."""


class NotFoundError(JofiApiError):
    """404: no such record. A by-id fetch may treat it as "gone" without failing its batch."""


class UnexpectedStatusError(JofiApiError):
    """Any other non-retryable status (405, 409, 422, ...)."""


class RateLimitedError(JofiApiError):
    """429 after all retries, or a Retry-After longer than the client is willing to wait."""

    label = "rate limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(JofiApiError):
    """5xx after all retries."""

    label = "server error"


class ApiUnreachableError(JofiApiError):
    """Connect errors, timeouts or dropped connections after all retries."""

    label = "unreachable"


class MalformedResponseError(JofiApiError):
    """A 2xx whose body is not JSON or not the expected shape, after all retries."""

    label = "malformed answer"


class ModeMismatchError(JofiApiError):
    """The response's top-level `mode` is not the client's mode (or is missing). Never retried."""

    fatal = True
    label = "wrong mode"

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


# --- constructors: the message of every error the client raises about an answer, or its absence ---
# (openai-python's `_exceptions.py` idea: the transport and the client decide *which* error; the
# words a person reads are written here, once, from redacted parts only.)


@dataclass(frozen=True)
class ErrorBody:
    """What an error response said: JOFI's error `type` and message (jofi-api.md 8.4), if anything."""

    type: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, content: bytes) -> ErrorBody:
        return cls(*describe_error_body(content))

    def detail(self, status: int) -> str:
        """`404 not_found_error: no such test taker`: the status, then what JOFI said."""
        text = " ".join([str(status), *([self.type] if self.type else [])])
        return f"{text}: {self.message}" if self.message else text

    def fields(self, route: str, status: int) -> dict[str, Any]:
        return {"status": status, "route": route, "error_type": self.type, "error_message": self.message}


def unreachable(
    route: str, host: str, what: str, cause: BaseException | None, retries: int, *, status: int | None = None
) -> ApiUnreachableError:
    """No usable answer (timeout, dropped connection, proxy) after every retry."""
    named = f" [{type(cause).__name__}]" if cause is not None else ""
    return ApiUnreachableError(
        f"GET {route}: the JOFI API at {host} {what}{named} after {retries} retries; "
        f"check the base URL ({settings.ENV_BASE_URL}), network/proxy/VPN, and that the service is up",
        status=status, route=route,
    )


def request_timeout(route: str, host: str, body: ErrorBody, retries: int) -> ApiUnreachableError:
    """408 after every retry: the server gave up waiting for us."""
    return unreachable(route, host, f"timed out ({body.detail(408)})", None, retries, status=408)


def undecodable_body(route: str) -> MalformedResponseError:
    return MalformedResponseError(f"GET {route}: the response body could not be decoded", route=route)


def malformed_body(route: str, status: int, why: str) -> MalformedResponseError:
    return MalformedResponseError(f"GET {route}: JOFI answered {status} but the body {why}", status=status, route=route)


def wait_too_long(route: str, status: int, body: ErrorBody, retry_after: float, limit: float) -> JofiApiError:
    """A Retry-After longer than the client waits: fail fast and say how long was asked."""
    message = (
        f"GET {route}: JOFI asked to wait {retry_after:.0f}s before retrying ({body.detail(status)}), "
        f"more than the {limit:.0f}s this client waits; try again later or lower the request rate"
    )
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **body.fields(route, status))
    return ServerError(message, **body.fields(route, status))


def still_rate_limited(route: str, body: ErrorBody, honoured: int, retry_after: float | None) -> RateLimitedError:
    return RateLimitedError(
        f"GET {route}: still rate limited by JOFI after its Retry-After was honoured {honoured} times "
        f"({body.detail(429)}); lower requests_per_second / max_concurrency",
        retry_after=retry_after, **body.fields(route, 429),
    )


def server_error(route: str, status: int, body: ErrorBody, retries: int) -> ServerError:
    return ServerError(
        f"GET {route}: JOFI server error ({body.detail(status)}) persisted after {retries} retries",
        **body.fields(route, status),
    )


def refused(route: str, status: int, body: ErrorBody, *, key_env_var: str, key_prefix: str) -> JofiApiError:
    """A status that is not retried (4xx): the error class and words that say what to fix."""
    detail, fields = body.detail(status), body.fields(route, status)
    if status in (401, 403):
        what = "refused the API key" if status == 401 else "denied this key access"
        return AuthenticationError(
            f"GET {route}: JOFI {what} ({detail}); check {key_env_var} "
            f"(is it the current {key_prefix}... key for this account?)",
            **fields,
        )
    if status == 400:
        return BadRequestError(f"GET {route}: JOFI rejected the request ({detail})", **fields)
    if status == 404:
        return NotFoundError(f"GET {route}: not found ({detail})", **fields)
    return UnexpectedStatusError(f"GET {route}: unexpected response ({detail})", **fields)


def unsupported_protocol(route: str, base_url: str, cause: BaseException) -> ConfigError:
    """A URL scheme httpx cannot speak is a setup mistake: retrying would only fail again."""
    return ConfigError(
        f"GET {route}: cannot send to {safe_url(base_url)} [{type(cause).__name__}]: unsupported "
        f"protocol; check {settings.ENV_BASE_URL} (it must start with http:// or https://)",
        route=route,
    )


def mode_mismatch(route: str, expected: str, actual: object, key_env_var: str) -> ModeMismatchError:
    said = "carries no `mode`" if actual is None else f"says mode {redact_text(repr(actual))[:40]}"
    return ModeMismatchError(
        f"GET {route}: the response {said} but this client runs in {expected} mode "
        f"(key from {key_env_var}); its data was discarded. Check that "
        f"{settings.ENV_BASE_URL} points at the right server and the key is the right one",
        expected=expected, actual=actual, route=route,
    )


def unhealthy(route: str, host: str, cause: JofiApiError) -> ApiUnreachableError:
    return ApiUnreachableError(
        f"the JOFI API at {host} is not healthy: {cause.message}; check "
        f"{settings.ENV_BASE_URL} (should end in /api/v2) and that the service is up",
        status=cause.status, route=route, error_type=cause.error_type, error_message=cause.error_message,
    )
