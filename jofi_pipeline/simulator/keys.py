"""API keys the simulator accepts: derived from the seed so runs are repeatable, overridable."""

from __future__ import annotations

import hashlib
import string

LIVE_PREFIX = "sk_live_"
TEST_PREFIX = "sk_test_"
_ALPHABET = string.ascii_letters + string.digits


def _token(seed: int, purpose: str, length: int = 24) -> str:
    digest = hashlib.sha256(f"jofi-sim:{seed}:{purpose}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def default_live_key(seed: int) -> str:
    return f"{LIVE_PREFIX}sim{_token(seed, 'live')}"


def default_test_key(seed: int) -> str:
    return f"{TEST_PREFIX}sim{_token(seed, 'test')}"


def check_key(key: str, prefix: str) -> str:
    """Refuse a configured key whose prefix would make it select the other mode."""
    if not key.startswith(prefix) or len(key) == len(prefix):
        raise ValueError(f"a key for this mode must start with {prefix!r} and have a body")
    return key
