"""Shared steps of the webhook tests: a receiver on a free port, signing done independently."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from jofi_pipeline.harness.receiver import SECRET, ReceiverThread

__all__ = ["SECRET", "ReceiverThread", "event_body", "signature"]


def signature(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """Written here from section 8.8, not imported from the receiver, so the two can disagree."""
    t = int(time.time()) if at is None else at
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def event_body(event_type: str, obj: dict, event_id: str = "evt_0001", **extra) -> bytes:
    envelope = {"id": event_id, "type": event_type, "object": "event", "created_at": "2026-03-02T10:00:00.000Z",
                "api_version": "2.3.0", "data": {"object": obj}, **extra}
    return json.dumps(envelope).encode()
