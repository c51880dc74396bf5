"""Latency as a client meets it: an answer leaves the latency after its request came, the
simulator's own work done within it, mangled or with added headers too. The ASGI layer driven
directly: when the route ran and when the answer left, on one clock (over HTTP, test_faults.py
checks an answer takes the latency)."""

from __future__ import annotations

import asyncio

from jofi_pipeline.simulator.context import RequestContext
from jofi_pipeline.simulator.faults import FaultInjector, FaultMiddleware, FaultSettings

LATENCY_S = 0.3


def _timeline(raises: bool = False, **faults) -> dict:
    """Seconds from the request to the route's start and to the answer's first message; the
    messages sent, in order. `raises`: the route sends a 500 and raises, as Starlette's error
    handler does."""

    async def go() -> dict:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: dict = {"sent": []}

        async def route(scope, receive, send):
            seen["route"] = loop.time() - started
            status = 500 if raises else 200
            await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"object":"team"}', "more_body": False})
            if raises:
                raise RuntimeError("a bug in a route")

        async def send(message):
            seen.setdefault("answer", loop.time() - started)
            seen["sent"].append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        ctx = RequestContext("GET /teams", "sk_live_x", "live", "/teams")
        scope = {"type": "http", "path": "/api/v2/teams", "jofi": ctx}
        middleware = FaultMiddleware(route, FaultInjector(FaultSettings(**faults)))
        try:
            await middleware(scope, receive, send)
        except RuntimeError as exc:
            seen["raised"] = str(exc)
        return seen

    return asyncio.run(go())


def test_a_plain_answer_is_worked_out_at_once_and_leaves_after_the_latency():
    seen = _timeline(latency_ms=LATENCY_S * 1000)
    assert seen["route"] < LATENCY_S / 2  # the route ran as the request came
    assert seen["answer"] >= LATENCY_S  # and its answer waited out the latency
    assert [m["type"] for m in seen["sent"]] == ["http.response.start", "http.response.body"]
    assert seen["sent"][1]["body"] == b'{"object":"team"}'


def test_an_answer_with_the_rate_limits_headers_is_held_the_same_way():
    seen = _timeline(latency_ms=LATENCY_S * 1000, rate_limit_per_s=1000)
    assert seen["route"] < LATENCY_S / 2 and seen["answer"] >= LATENCY_S
    assert (b"ratelimit-limit", b"1000") in seen["sent"][0]["headers"]  # the rate limit's headers, added


def test_a_mangled_answer_is_held_too_and_still_mangled():
    seen = _timeline(latency_ms=LATENCY_S * 1000, malformed_rate=1.0)
    assert seen["route"] < LATENCY_S / 2 and seen["answer"] >= LATENCY_S
    assert b"<html>" in seen["sent"][-1]["body"]


def test_a_route_that_raises_still_answers_when_due_and_the_error_goes_on():
    seen = _timeline(raises=True, latency_ms=LATENCY_S * 1000)
    assert seen["answer"] >= LATENCY_S and seen["sent"][0]["status"] == 500
    assert seen["raised"] == "a bug in a route"


def test_no_latency_no_wait():
    seen = _timeline()
    assert seen["route"] < LATENCY_S / 2 and seen["answer"] < LATENCY_S / 2 and len(seen["sent"]) == 2
