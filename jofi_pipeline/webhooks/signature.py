"""Verify `JOFI-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (jofi-api.md 8.8).

Constant-time comparison; a timestamp outside the tolerance (either direction) is refused so a
captured request cannot be replayed later. Several `v1=` values are accepted (secret rotation).
Error messages never contain the secret or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "JOFI-Signature"
TOLERANCE_S = 300


class SignatureError(Exception):
    """The request is not provably from JOFI; `reason` is safe to return to the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def parse_header(value: str | None) -> tuple[str, list[str]]:
    """(timestamp text, [v1 signatures]) or SignatureError."""
    if not value:
        raise SignatureError(f"missing {HEADER} header: unsigned events are never accepted")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = item.strip()
        elif key == "v1":
            signatures.append(item.strip())
    if timestamp is None or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"malformed {HEADER} header: no valid t=<unix seconds>")
    if not signatures:
        raise SignatureError(f"malformed {HEADER} header: no v1=<hex> signature")
    return timestamp, signatures


def verify(header: str | None, body: bytes, secret: str, *, tolerance_s: int = TOLERANCE_S, now: float | None = None) -> int:
    """Return the signed timestamp if the signature is valid and fresh; else raise SignatureError."""
    if not secret:
        raise ValueError("no webhook secret configured")
    timestamp, signatures = parse_header(header)
    expected = expected_signature(secret, timestamp, body)
    # Compare against every candidate without stopping early.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.lower().encode())
    if not matched:
        raise SignatureError("signature does not match: check the endpoint secret")
    signed_at = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance_s:
        raise SignatureError(f"signature timestamp is outside the {tolerance_s}s tolerance (stale or replayed request)")
    return signed_at
