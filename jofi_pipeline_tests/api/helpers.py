"""A scripted fake JOFI for httpx.MockTransport: each request takes the next scripted answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from jofi_pipeline.api import ClientConfig, JofiClient

LIVE_KEY = "sk_live_UnitTestKey123"
TEST_KEY = "sk_test_UnitTestKey456"
BASE_URL = "http://jofi.example:8080/api/v2"

# Retries in unit tests should take milliseconds, not seconds.
FAST = ClientConfig(initial_backoff=0.001, max_backoff=0.01, max_retries=3)

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def ok(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def raw(status: int, content: bytes | str, **headers: str) -> httpx.Response:
    if isinstance(content, str):
        content = content.encode()
    return httpx.Response(status, content=content, headers=headers)


def error(status: int, error_type: str, message: str, mode: str | None = "live", **headers: str) -> httpx.Response:
    return ok({"mode": mode, "object": "error", "error": {"type": error_type, "message": message}}, status, **headers)


def page(ids: list[Any], *, mode: str = "live", has_more: bool = False, total: int | None = None) -> dict:
    return {
        "mode": mode, "object": "list", "total_count": total if total is not None else len(ids),
        "has_more": has_more, "data": [{"object": "thing_list_item", "id": i} for i in ids],
    }


class Script:
    """Hands out answers in order (the last one repeats) and records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def count(self) -> int:
        return len(self.requests)


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    key: str = LIVE_KEY,
    mode: str | None = "live",
    config: ClientConfig = FAST,
) -> JofiClient:
    return JofiClient(api_key=key, mode=mode, base_url=BASE_URL, config=config, transport=httpx.MockTransport(handler))


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None
