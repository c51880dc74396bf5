"""Which mode a request runs in, read from its bearer key (section 8.1).

Both `Authorization` (standard, used by the docs' examples) and `Authentication` (the API Keys
page's spelling) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError
from .keys import LIVE_PREFIX, TEST_PREFIX

HEADER_NAMES = (b"authorization", b"authentication")


@dataclass(frozen=True)
class KeyRing:
    live_key: str
    test_key: str

    def mode_of(self, key: str | None) -> str | None:
        """The mode a presented key grants, or None when the account does not own it."""
        if key is None:
            return None
        if key == self.live_key:
            return "live"
        if key == self.test_key:
            return "test"
        return None


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token from the raw ASGI headers, or None when there is none."""
    for name, value in headers:
        if name.lower() in HEADER_NAMES:
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def authenticate(key: str | None, ring: KeyRing) -> str:
    """The mode for this key, or a 401 saying why not (never echoing the key)."""
    if key is None:
        raise ApiError(401, "No API key provided. Send 'Authorization: Bearer sk_live_...' or 'Bearer sk_test_...'.")
    if not key.startswith((LIVE_PREFIX, TEST_PREFIX)):
        raise ApiError(401, "Invalid API key: keys start with sk_live_ or sk_test_.")
    mode = ring.mode_of(key)
    if mode is None:
        raise ApiError(401, "Invalid API key provided.")
    return mode
