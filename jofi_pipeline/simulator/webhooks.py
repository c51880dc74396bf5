"""Live-mode webhook deliveries: JOFI's events, signed, POSTed to the configured URL, retried.

The live world calls `WebhookSender.emit(world, type, record, at)` as activity happens (advance,
live POST /invitations); the test world never does (sk_test calls enter no event pipeline, section
4.1). The event body is rendered at that moment, as JOFI would, and queued; worker threads deliver
it with `JOFI-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (section 8.8), re-signing
each attempt and retrying non-2xx answers and transport errors with bounded backoff.

Imports nothing from the rest of jofi_pipeline: it must be able to disagree with our receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import views

if TYPE_CHECKING:
    import httpx

API_VERSION = "2.3.0"
SIGNATURE_HEADER = "JOFI-Signature"
EVENT_TYPES = (
    "invitation.created",
    "invitation.accepted",
    "test_taker.created",
    "test_taker.assessment_completed",
    "career_navigation_profile.created",
)
WORKERS = 4
MAX_ATTEMPTS = 6
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
TIMEOUT_S = 5.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _render(world: Any, record: Any) -> dict:
    kind = type(record).__name__
    if kind == "Invitation":
        return views.invitation(world, record)
    if kind == "TestTaker":
        return views.test_taker(world, record)
    return views.career_navigation_profile(world, record)


def _event_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Delivery:
    event_id: str
    event_type: str
    body: bytes
    attempts: int = 0
    last_status: int | None = None


@dataclass
class DeliveryStats:
    emitted: int = 0
    delivered: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    not_sent_disabled: int = 0
    by_type: Counter = field(default_factory=Counter)
    failures_by_status: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "emitted": self.emitted,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "gave_up": self.gave_up,
            "not_sent_disabled": self.not_sent_disabled,
            "by_type": dict(self.by_type),
            "failures_by_status": {str(k): v for k, v in self.failures_by_status.items()},
        }


class WebhookSender:
    """Queue + workers. `url` and `secret` both set = enabled; otherwise events are counted, not sent."""

    def __init__(self, url: str | None = None, secret: str | None = None, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.url = url or None
        self._secret = secret or None
        self.max_attempts = max_attempts
        self.stats = DeliveryStats()
        self._queue: deque[Delivery] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    @property
    def enabled(self) -> bool:
        return bool(self.url and self._secret)

    def configure(self, update: dict) -> None:
        """Merge `url`, `secret`, `max_attempts` (None/"" switches url or secret off)."""
        unknown = set(update) - {"url", "secret", "max_attempts"}
        if unknown:
            raise ValueError(f"unknown webhook settings: {', '.join(sorted(unknown))}")
        with self._cond:
            if "url" in update:
                url = update["url"] or None
                if url is not None and not str(url).startswith(("http://", "https://")):
                    raise ValueError("url must be an http(s) URL")
                self.url = url
            if "secret" in update:
                self._secret = update["secret"] or None
            if "max_attempts" in update:
                attempts = int(update["max_attempts"])
                if attempts < 1:
                    raise ValueError("max_attempts must be at least 1")
                self.max_attempts = attempts

    # ---- producing ----------------------------------------------------------------------

    def emit(self, world: Any, event_type: str, record: Any, at: datetime) -> None:
        """Called by the live world for each lifecycle move; renders the object now."""
        event_id = "evt_" + secrets.token_hex(12)
        envelope = {
            "id": event_id,
            "type": event_type,
            "object": "event",
            "created_at": _event_time(at),
            "api_version": API_VERSION,
            "data": {"object": _render(world, record)},
        }
        with self._cond:
            self.stats.emitted += 1
            self.stats.by_type[event_type] += 1
            if not self.enabled:
                self.stats.not_sent_disabled += 1
                return
            envelope["webhook_url"] = self.url
            envelope["webhook_verification_method"] = "hmac"
            body = json.dumps(envelope, separators=(",", ":")).encode()
            self._queue.append(Delivery(event_id, event_type, body))
            self._ensure_workers()
            self._cond.notify()

    # ---- delivering ---------------------------------------------------------------------

    def _ensure_workers(self) -> None:
        while len(self._threads) < WORKERS:
            thread = threading.Thread(target=self._work, name=f"jofi-sim-webhooks-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        import httpx  # on the first delivery, not at start: most simulators never send one (~0.1 s of CPU)

        with httpx.Client(timeout=TIMEOUT_S) as client:
            while True:
                with self._cond:
                    while not self._queue:
                        self._cond.wait()
                    delivery = self._queue.popleft()
                    self._in_flight += 1
                    url, secret = self.url, self._secret
                try:
                    self._deliver(client, delivery, url, secret)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _deliver(self, client: httpx.Client, delivery: Delivery, url: str | None, secret: str | None) -> None:
        import httpx

        backoff = FIRST_BACKOFF_S
        while True:
            if not (url and secret):  # switched off while queued: drop, as a disabled endpoint would
                with self._cond:
                    self.stats.gave_up += 1
                return
            delivery.attempts += 1
            status: int | None = None
            try:
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, delivery.body, int(time.time()))}
                status = client.post(url, content=delivery.body, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            with self._cond:
                self.stats.attempts += 1
                if status is not None and 200 <= status < 300:
                    self.stats.delivered += 1
                    return
                self.stats.failed_attempts += 1
                self.stats.failures_by_status["error" if status is None else status] += 1
                delivery.last_status = status
                if delivery.attempts >= self.max_attempts:
                    self.stats.gave_up += 1
                    return
                url, secret = self.url, self._secret
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    # ---- admin --------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight (True), or until `timeout` (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def describe(self) -> dict:
        """Settings and counters; the secret is never shown, only whether one is set."""
        with self._cond:
            return {
                "url": self.url,
                "secret_set": self._secret is not None,
                "enabled": self.enabled,
                "max_attempts": self.max_attempts,
                "pending": len(self._queue),
                "in_flight": self._in_flight,
                "pending_sample": [
                    {"id": d.event_id, "type": d.event_type, "attempts": d.attempts} for d in list(self._queue)[:20]
                ],
                "stats": self.stats.as_dict(),
                "live_only": "test-mode (sk_test) activity never produces events",
            }

    def reset_stats(self) -> None:
        with self._cond:
            self.stats = DeliveryStats()


# ---- /_sim/webhooks admin routes ----------------------------------------------------------

MAX_FLUSH_WAIT_S = 120.0


def admin_routes(get_sender: Any) -> list:
    """`GET|POST /_sim/webhooks` (read / merge settings), `POST /_sim/webhooks/flush?timeout=S`
    (wait until every queued delivery was answered or given up), `POST /_sim/webhooks/stats/reset`."""
    import asyncio

    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def problem(message: str) -> JSONResponse:
        return JSONResponse({"object": "error", "error": {"type": "invalid_request_error", "message": message}}, 400)

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(get_sender().describe())

    async def update(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("send a JSON object: {\"url\": ..., \"secret\": ..., \"max_attempts\": ...}")
            get_sender().configure(body)
        except (ValueError, TypeError) as exc:
            return problem(str(exc))
        return JSONResponse(get_sender().describe())

    async def flush(request: Request) -> JSONResponse:
        try:
            timeout = min(float(request.query_params.get("timeout", "30")), MAX_FLUSH_WAIT_S)
        except ValueError:
            return problem("timeout must be a number of seconds")
        sender = get_sender()
        flushed = await asyncio.to_thread(sender.wait_idle, timeout)
        return JSONResponse({"flushed": flushed, **sender.describe()})

    async def reset(request: Request) -> JSONResponse:
        get_sender().reset_stats()
        return JSONResponse(get_sender().describe())

    return [
        Route("/webhooks", read, methods=["GET"]),
        Route("/webhooks", update, methods=["POST", "PUT", "PATCH"]),
        Route("/webhooks/flush", flush, methods=["POST"]),
        Route("/webhooks/stats/reset", reset, methods=["POST"]),
    ]
