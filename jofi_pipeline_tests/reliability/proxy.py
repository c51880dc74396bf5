"""A JOFI that misbehaves on purpose: the real simulator behind a proxy that edits its answers.

The simulator follows our contract; a real server may not. This proxy forwards every request to a
running simulator and can (a) rewrite the JSON of chosen routes, e.g. add list items whose ids
break the id rule, or (b) answer chosen routes with a 401 whose message quotes the request's
Authorization header, as a badly configured gateway would, or (c) answer chosen paths (one record's
by-id URL) with a 500 every time, as a server that always fails on one record would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from jofi_pipeline.harness.threaded_server import ThreadedServer

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


class JofiProxy(ThreadedServer):
    """`with JofiProxy(sim, rewrite={"/test-takers": f}) as proxy:` then use `proxy.base_url`."""

    def __init__(self, sim, *, rewrite: dict[str, Rewrite] | None = None, echo_key_on: tuple[str, ...] = (),
                 fail_paths: tuple[str, ...] = ()) -> None:
        self.sim_root = sim.root_url
        self.rewrite = rewrite or {}
        self.echo_key_on = echo_key_on
        self.fail_paths = fail_paths
        self.failed: list[str] = []  # the fail_paths requests answered 500, in order
        self._client: httpx.AsyncClient | None = None
        async def app(scope, receive, send) -> None:  # a plain coroutine function: uvicorn sees ASGI 3
            await self._app(scope, receive, send)

        super().__init__(app)
        self.base_url = f"{self.root_url}/api/v2"

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        route = request.url.path.removeprefix("/api/v2")
        if route in self.echo_key_on:
            said = request.headers.get("authorization", "")
            body = {"mode": None, "object": "error", "error": {
                "type": "authentication_error", "message": f"upstream refused the request with Authorization: {said}"}}
            await Response(json.dumps(body), status_code=401, media_type="application/json")(scope, receive, send)
            return
        if route in self.fail_paths:
            self.failed.append(route)
            body = {"mode": None, "object": "error", "error": {"type": "api_error", "message": "internal error"}}
            # Retry-After: 0, so the client retries the id as often as ever, without its backoff's
            # ~12 s of sleep per run (the rule under test counts runs, not seconds)
            await Response(json.dumps(body), status_code=500, headers={"Retry-After": "0"},
                           media_type="application/json")(scope, receive, send)
            return
        if self._client is None:  # one pool for the server's lifetime (its loop is the server thread's)
            self._client = httpx.AsyncClient(base_url=self.sim_root, timeout=30)
        answer = await self._client.request(
            request.method, request.url.path, params=request.query_params,
            headers={k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")},
            content=await request.body(),
        )
        content = answer.content
        if route in self.rewrite and answer.status_code == 200:
            content = json.dumps(self.rewrite[route](answer.json())).encode()
        headers = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")}
        await Response(content, status_code=answer.status_code, headers=headers)(scope, receive, send)
