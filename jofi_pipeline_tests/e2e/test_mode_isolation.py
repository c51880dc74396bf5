"""A server that answers `mode: "test"` to a live key must leave nothing written anywhere."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from jofi_pipeline.settings import ENV_LIVE_KEY
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline_tests.e2e.helpers import sync
from jofi_pipeline.harness.threaded_server import ThreadedServer


def _wrong_mode_app() -> Starlette:
    """Healthy, well-formed, but every body claims test mode (a misrouted key or proxy)."""

    async def healthcheck(request):
        return JSONResponse({"status": "ok"})

    async def account(request):
        return JSONResponse({"mode": "test", "object": "account", "id": 68, "display_name": "Fake"})

    async def any_list(request):
        return JSONResponse({"mode": "test", "object": "list", "total_count": 0, "has_more": False, "data": []})

    return Starlette(routes=[
        Route("/api/v2/healthcheck", healthcheck),
        Route("/api/v2/accounts", account),
        Route("/api/v2/{path:path}", any_list),
    ])


@pytest.fixture
def wrong_mode_server():
    with ThreadedServer(_wrong_mode_app()) as server:

        class Endpoint:
            base_url = f"{server.root_url}/api/v2"

        yield Endpoint


def test_test_mode_answers_to_the_live_partition_write_nothing(wrong_mode_server, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_LIVE_KEY, "sk_live_isolation_check_0001")
    with pytest.raises(SyncFailed) as failure:
        sync(wrong_mode_server, "live", tmp_path)
    assert "mode" in failure.value.reason.lower()
    assert list(tmp_path.rglob("*")) == [], "nothing may be written when the server's mode is wrong"
