"""Shared steps of the webhook tests: a receiver on a free port, signing done independently."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from jofi_pipeline.webhooks.app import PATH, build_app
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.threaded_server import ThreadedServer

SECRET = "whsec_test_only_0123456789abcdef"


def signature(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """Written here from section 8.8, not imported from the receiver, so the two can disagree."""
    t = int(time.time()) if at is None else at
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def event_body(event_type: str, obj: dict, event_id: str = "evt_0001", **extra) -> bytes:
    envelope = {"id": event_id, "type": event_type, "object": "event", "created_at": "2026-03-02T10:00:00.000Z",
                "api_version": "2.3.0", "data": {"object": obj}, **extra}
    return json.dumps(envelope).encode()


class ReceiverThread(ThreadedServer):
    """`jofi-pipeline webhooks` in a thread: the real app under uvicorn, on a free port."""

    def __init__(self, data_dir: Path, secret: str = SECRET) -> None:
        self.inbox = Inbox.open(ModePaths(data_dir, "live").inbox)
        self.app = build_app(secret, self.inbox)
        super().__init__(self.app)
        self.url = f"{self.root_url}{PATH}"

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.inbox.close()
