"""The webhook receiver as an ASGI app: verify, then store durably, then answer 2xx.

    POST /webhooks  one JOFI event (jofi-api.md 4.4), signed per 8.8
    GET  /healthz   {"status": "ok"}

Answers, in the order they are decided (nothing is stored unless the answer is 200):
  413  body larger than MAX_BODY_BYTES (Content-Length, or counted while reading)
  401  JOFI-Signature missing, not matching, or outside the 5-minute tolerance (forged / replayed)
  400  JOFI-Signature present but malformed; or a verified body that is not a JSON event envelope;
       or an event marked mode "test" (webhooks are live-only)
  503  the inbox could not be written (JOFI should retry)
  200  stored (or already stored: a redelivery of the same event id is stored once)
The body is parsed only after its signature checked out.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jofi_pipeline.webhooks.events import EventError, parse_event
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline.webhooks.signature import HEADER, TOLERANCE_S, SignatureError, parse_header, verify

log = logging.getLogger("jofi_pipeline.webhooks")

PATH = "/webhooks"
MAX_BODY_BYTES = 256 * 1024


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(status: int, reason: str, request: Request) -> JSONResponse:
    client = request.client.host if request.client else "?"
    log.warning("webhook rejected (%d) from %s: %s", status, client, reason)
    return JSONResponse({"error": reason}, status_code=status)


def build_app(secret: str, inbox: Inbox, *, tolerance_s: int = TOLERANCE_S, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The receiver for one live endpoint secret, appending to `inbox`."""
    if not secret:
        raise ValueError("a webhook secret is required: the receiver never accepts unsigned events")

    async def receive_event(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return _reject(413, f"body larger than {max_body_bytes} bytes", request)
        header = request.headers.get(HEADER)
        try:
            if header:
                parse_header(header)  # malformed is a 400, not an authentication failure
        except SignatureError as exc:
            return _reject(400, exc.reason, request)
        try:
            verify(header, body, secret, tolerance_s=tolerance_s)
        except SignatureError as exc:
            return _reject(401, exc.reason, request)
        try:
            event = parse_event(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            reason = str(exc) if isinstance(exc, EventError) else "the body is not valid JSON"
            return _reject(400, reason, request)
        try:
            stored = await run_in_threadpool(
                inbox.add_event, event.id, event.type, event.created_at, body.decode(), event.targets
            )
        except Exception as exc:  # disk full, locked too long...: JOFI must retry, so not 2xx
            log.error("webhook %s could not be stored: %s", event.id, type(exc).__name__)
            return JSONResponse({"error": "the event could not be stored; retry later"}, status_code=503)
        log.info("webhook %s %s %s", event.id, event.type, "stored" if stored else "duplicate (already stored)")
        return JSONResponse({"received": True, "id": event.id, "duplicate": not stored})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(PATH, receive_event, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])])
