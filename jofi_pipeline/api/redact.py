"""Keep the API key out of every string a person or a log can see.

The key lives only inside `SecretKey`, whose str/repr show the prefix (it says the mode, which
is not secret) and nothing else. Text that came from the server, or URLs we print, pass through
`redact_text` / `safe_url` first, because a server may echo a key back in an error message.
"""

from __future__ import annotations

import httpx

from jofi_pipeline import settings

REDACTED = settings.REDACTED


class SecretKey:
    """An API key that never shows itself in str, repr, format, pickle or copies into args."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw key, for the one place that must send it (the Authorization header)."""
        return self._value

    @property
    def prefix(self) -> str:
        match = settings.KEY_PATTERN.match(self._value)
        return match.group(1) if match else ""

    def __repr__(self) -> str:
        return f"SecretKey({self.prefix}{REDACTED})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):  # pickling would write the key to disk or a queue
        raise TypeError("SecretKey cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_text(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything key-shaped replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return settings.redact_keys(text, REDACTED)


def safe_url(url: str | httpx.URL) -> str:
    """scheme://host[:port]/path — no user info, no query string, no fragment."""
    try:
        parsed = httpx.URL(str(url))
    except Exception:
        return REDACTED
    port = f":{parsed.port}" if parsed.port else ""
    return redact_text(f"{parsed.scheme}://{parsed.host}{port}{parsed.path}")


def safe_host(url: str | httpx.URL) -> str:
    """host[:port] only: what an error may name when telling a person what to check."""
    try:
        parsed = httpx.URL(str(url))
    except Exception:
        return REDACTED
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
