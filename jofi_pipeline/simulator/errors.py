"""The error body of section 8.4 and the exception handlers raise to produce it."""

from __future__ import annotations

import json

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, mode: str | None) -> bytes:
    body = {"mode": mode, "object": "error", "error": {"type": error_type(status), "message": message}}
    return json.dumps(body, separators=(",", ":")).encode()


class ApiError(Exception):
    """Raised by a route; becomes an 8.4 error response with this status."""

    def __init__(self, status: int, message: str, mode: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.mode = mode


def bad_request(message: str, mode: str | None) -> ApiError:
    return ApiError(400, message, mode)


def not_found(what: str, ident: object, mode: str | None) -> ApiError:
    return ApiError(404, f"No such {what}: {ident!r}", mode)
