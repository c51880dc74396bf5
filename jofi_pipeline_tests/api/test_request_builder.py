"""Requests built from the base URL parsed once are the requests httpx builds from the whole string."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jofi_pipeline import entities
from jofi_pipeline.api.client import _request_of
from jofi_pipeline.api.request_builder import RequestBuilder
from jofi_pipeline_tests.api.helpers import BASE_URL, Script, make_client, ok

HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "User-Agent": "jofi-pipeline/test"}
TIMEOUT = httpx.Timeout(5.0).as_dict()
KEYS = {"int": [1, 42, 2**63 - 1], "profile": ["CNP1234567890", "a_b-C"]}


def by_id_requests() -> list[tuple[str, dict | None]]:
    """(path, params) of every by-id route of the registry, for a few ids each."""
    made = []
    for record in entities.ENTITIES.values():
        route = record.by_id
        if route is None:
            continue
        if route.param is None:
            made.append(_request_of(record, None))
            continue
        for key in KEYS[record.id_type]:
            made.append(_request_of(record, (key, "JOFI-295-AS") if route.query else key))
    return made


def as_httpx_builds(base_url: str, path: str, params, authorization: str | None) -> httpx.Request:
    headers = HEADERS if authorization is None else {**HEADERS, "Authorization": authorization}
    return httpx.Request("GET", base_url + path, params=params, headers=headers, extensions={"timeout": TIMEOUT})


def same(built: httpx.Request, expected: httpx.Request) -> None:
    assert built.method == expected.method
    assert built.url == expected.url and str(built.url) == str(expected.url)
    assert built.url.raw_path == expected.url.raw_path and built.url.netloc == expected.url.netloc
    assert built.headers.raw == expected.headers.raw
    assert built.extensions == expected.extensions


@pytest.mark.parametrize("base_url", [BASE_URL, "https://api.jofi.example", "http://127.0.0.1:8123/v1/"])
def test_every_by_id_route_and_list_page_is_the_request_httpx_builds(base_url):
    base_url = base_url.rstrip("/")
    builder = RequestBuilder(base_url, HEADERS, TIMEOUT)
    cases = by_id_requests() + [("/test-takers", {"limit": 100}), ("/test-takers", {"limit": 100, "cursor": "eyJ 9+/="}),
                                ("/health", None)]
    assert len(cases) > 8
    for path, params in cases:
        for authorization in (None, "Bearer sk_live_UnitTestKey123"):
            same(builder.get(path, params, authorization), as_httpx_builds(base_url, path, params, authorization))


@pytest.mark.parametrize("path", ["/a b", "/x/../y", "/x/./y", "/%zz", "/caf\u00e9", "/a?b"])
def test_a_path_httpx_would_change_is_built_by_httpx(path):
    builder = RequestBuilder(BASE_URL, HEADERS, TIMEOUT)
    same(builder.get(path, None, None), as_httpx_builds(BASE_URL, path, None, None))


def test_values_that_are_equal_but_written_apart_are_each_written_as_httpx_writes_them():
    """1, True and 1.0 are one key to a cache, three queries to httpx (k=1, k=true, k=1.0)."""
    builder = RequestBuilder(BASE_URL, HEADERS, TIMEOUT)
    for value in (1, True, 1.0, "1", 1, True):
        same(builder.get("/test-takers", {"k": value}, None), as_httpx_builds(BASE_URL, "/test-takers", {"k": value}, None))


def test_a_base_url_httpx_refuses_fails_at_the_request_as_before():
    builder = RequestBuilder("http://[::1", HEADERS, TIMEOUT)
    with pytest.raises(httpx.InvalidURL):
        builder.get("/accounts", None, None)


def test_a_by_id_get_parses_no_url_string(monkeypatch):
    """httpx's URL parse runs for the base URL as the client opens, not for each request (~45 µs each)."""
    from httpx import _urls

    parses: list[str] = []
    real = _urls.urlparse
    monkeypatch.setattr(_urls, "urlparse", lambda url="", **kwargs: parses.append(url) or real(url, **kwargs))
    script = Script(lambda request: ok({"mode": "live", "object": "test_taker", "id": int(request.url.path.rsplit("/", 1)[1])}))

    async def go() -> None:
        async with make_client(script) as client:
            for test_taker_id in range(1, 21):
                await client.get("test_takers", test_taker_id)

    asyncio.run(go())
    assert script.count == 20
    assert [str(r.url) for r in script.requests][-1] == f"{BASE_URL}/test-takers/20"
    assert not [url for url in parses if "/test-takers" in url], parses  # only the base URL, as the client opened


@pytest.mark.parametrize("base_url", [BASE_URL, "https://api.jofi.example", "http://127.0.0.1:8123/v1/", "http://[::1"])
def test_a_target_is_the_url_and_the_headers_of_the_request_httpx_builds(base_url):
    """What the client's own pool is handed (a URL string and header pairs) is what httpx would send."""
    base_url = base_url.rstrip("/")
    builder = RequestBuilder(base_url, HEADERS, TIMEOUT)
    cases = by_id_requests() + [("/test-takers", {"limit": 100}), ("/test-takers", {"limit": 100, "cursor": "eyJ 9+/="}),
                                ("/test-takers", {"k": [1, 2]}), ("/a b", None), ("/x/../y", None), ("/caf\u00e9", None)]
    for path, params in cases:
        for authorization in (None, "Bearer sk_live_UnitTestKey123"):
            try:
                expected = as_httpx_builds(base_url, path, params, authorization)
            except httpx.InvalidURL:
                with pytest.raises(httpx.InvalidURL):
                    builder.target(path, params, authorization)
                continue
            url, pairs = builder.target(path, params, authorization)
            assert url == str(expected.url)
            assert [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs] == expected.headers.raw


def test_the_header_pairs_of_a_target_do_not_show_the_key():
    """A traceback that prints its frames' locals shows the pairs by their repr: names only."""
    _, pairs = RequestBuilder(BASE_URL, HEADERS, TIMEOUT).target("/accounts", None, "Bearer sk_live_UnitTestKey123")
    assert ("Authorization", "Bearer sk_live_UnitTestKey123") in pairs
    assert "UnitTestKey" not in repr(pairs) and "UnitTestKey" not in str(pairs) and "Authorization" in repr(pairs)
