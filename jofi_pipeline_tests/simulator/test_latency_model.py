"""Latency as a client meets it: a plain answer leaves the latency after its request came, the
simulator's own work done within it; faults that describe an order (a hang, an injected answer, a
mangled body) keep delay-then-route. The ASGI layer driven directly: when the route ran and when
the answer left, on one clock (over HTTP, test_faults.py checks an answer takes the latency)."""

from __future__ import annotations

import asyncio

from jofi_pipeline.simulator.context import RequestContext
from jofi_pipeline.simulator.faults import FaultInjector, FaultMiddleware, FaultSettings

LATENCY_S = 0.3


def _timeline(**faults) -> dict[str, float]:
    """Seconds from the request to the route's start, and to the answer's first message."""

    async def go() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: dict[str, float] = {}

        async def route(scope, receive, send):
            seen["route"] = loop.time() - started
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"object":"team"}', "more_body": False})

        async def send(message):
            seen.setdefault("answer", loop.time() - started)
            seen.setdefault("messages", 0)
            seen["messages"] += 1

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        ctx = RequestContext("GET /teams", "sk_live_x", "live", "/teams")
        scope = {"type": "http", "path": "/api/v2/teams", "jofi": ctx}
        middleware = FaultMiddleware(route, FaultInjector(FaultSettings(**faults)))
        await middleware(scope, receive, send)
        return seen

    return asyncio.run(go())


def test_a_plain_answer_is_worked_out_at_once_and_leaves_after_the_latency():
    seen = _timeline(latency_ms=LATENCY_S * 1000)
    assert seen["route"] < LATENCY_S / 2  # the route ran as the request came
    assert seen["answer"] >= LATENCY_S  # and its answer waited out the latency
    assert seen["messages"] == 2  # start and body, both handed on


def test_a_mangled_answer_still_waits_before_its_route():
    seen = _timeline(latency_ms=LATENCY_S * 1000, malformed_rate=1.0)
    assert seen["route"] >= LATENCY_S and seen["answer"] >= LATENCY_S


def test_no_latency_no_wait():
    seen = _timeline()
    assert seen["route"] < LATENCY_S / 2 and seen["answer"] < LATENCY_S / 2
