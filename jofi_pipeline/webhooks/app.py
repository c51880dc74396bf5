"""The webhook receiver as an ASGI app: verify, then store durably, then answer 2xx.

    POST /webhooks  one JOFI event (jofi-api.md 4.4), signed per 8.8
    GET  /healthz   {"status": "ok"}

Answers, in the order they are decided (nothing is stored unless the answer is 200):
  413  body larger than MAX_BODY_BYTES (Content-Length, or counted while reading)
  408  the body did not arrive within BODY_TIMEOUT_S (a slow or stalled sender holds no worker)
  401  JOFI-Signature missing, not matching, or outside the 5-minute tolerance (forged / replayed)
  400  JOFI-Signature present but malformed; or a verified body that is not a usable live event
       (events.parse_body: not UTF-8, not JSON, nested too deep, not an envelope, not live)
  503  the inbox could not be written (a disk problem: JOFI should retry)
  200  stored (or already stored: a redelivery of the same event id is stored once)
Never a 500: an answer that JOFI would retry forever must mean "try again later", and only a
storage failure means that. The body is parsed only after its signature checked out.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jofi_pipeline.webhooks.events import EventError, parse_body
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline.webhooks.signature import HEADER, TOLERANCE_S, SignatureError, parse_header, verify

log = logging.getLogger("jofi_pipeline.webhooks")

PATH = "/webhooks"
MAX_BODY_BYTES = 256 * 1024
BODY_TIMEOUT_S = 5.0


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body within `timeout_s` (TimeoutError otherwise) and `limit` bytes (_TooLarge)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout_s):
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


def build_app(
    secret: str, inbox: Inbox, *, tolerance_s: int = TOLERANCE_S, max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> Starlette:
    """The receiver for one live endpoint secret, appending to `inbox`."""
    if not secret:
        raise ValueError("a webhook secret is required: the receiver never accepts unsigned events")

    async def receive_event(request: Request) -> JSONResponse:
        try:
            return await _receive(request)
        except Exception as exc:  # a bug of ours: say so in the log, never a 500 (JOFI would retry forever)
            log.error("webhook could not be handled (%s); answered 400", type(exc).__name__)
            return JSONResponse({"error": "the event could not be read"}, status_code=400)

    async def _receive(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes, body_timeout_s)
        except _TooLarge:
            return _reject(413, f"body larger than {max_body_bytes} bytes", request)
        except TimeoutError:
            return _reject(408, f"the body did not arrive within {body_timeout_s:g}s", request)
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
            event = parse_body(body)
        except EventError as exc:
            return _reject(400, str(exc), request)
        try:
            stored = await run_in_threadpool(
                inbox.add_event, event.id, event.type, event.created_at, body.decode("utf-8"), event.targets
            )
        except Exception as exc:  # disk full, locked too long...: JOFI must retry, so not 2xx
            log.error("webhook %s could not be stored: %s", event.id, type(exc).__name__)
            return JSONResponse({"error": "the event could not be stored; retry later"}, status_code=503)
        log.info("webhook %s %s %s", event.id, event.type, "stored" if stored else "duplicate (already stored)")
        return JSONResponse({"received": True, "id": event.id, "duplicate": not stored})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(PATH, receive_event, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])])
