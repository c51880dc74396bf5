"""The aiohttp pool under httpx: real sockets, and failures named for what they are."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import pytest

from jofi_pipeline.api.http import Answer, pooled_transport


async def serve(handler) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/x"


async def test_keep_alive_reuses_one_connection_for_sequential_requests():
    connections = 0

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
            await writer.drain()

    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    async with server, httpx.AsyncClient(transport=pooled_transport(4)) as client:
        for _ in range(5):
            response = await client.get(url)
            assert response.json() == {"a": 1}
    assert connections == 1


async def test_a_refused_connection_is_a_connect_error_not_a_timeout():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    async with httpx.AsyncClient(transport=pooled_transport(2)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/x")


async def test_a_server_that_hangs_up_before_answering_is_a_protocol_error():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, url = await serve(handler)
    async with server, httpx.AsyncClient(transport=pooled_transport(2)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_a_body_cut_short_is_a_read_error():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":")
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    async with server, httpx.AsyncClient(transport=pooled_transport(2)) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(url)


async def test_a_slow_answer_is_a_read_timeout():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(2)

    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    async with server, httpx.AsyncClient(transport=pooled_transport(2), timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(url)


async def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    return f"http://127.0.0.1:{port}/x"


async def hang_up(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def cut_short(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":")
    await writer.drain()
    writer.close()


async def too_slow(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(2)


@pytest.mark.parametrize(("handler", "expected"), [
    (None, httpx.ConnectError), (hang_up, httpx.RemoteProtocolError),
    (cut_short, (httpx.ReadError, httpx.RemoteProtocolError)), (too_slow, httpx.TimeoutException),
])
async def test_the_direct_get_fails_with_the_httpx_error_the_failure_is(handler, expected):
    """The client's own GET (no httpx.Request) maps failures as `handle_async_request` does."""
    transport = pooled_transport(2)
    timeout = httpx.Timeout(0.2).as_dict()
    try:
        if handler is None:
            with pytest.raises(expected):
                await transport.get_whole(await refused_url(), (), timeout)
            return
        server, url = await serve(lambda r, w: _quietly(handler(r, w)))
        async with server:
            with pytest.raises(expected):
                await transport.get_whole(url, (), timeout)
    finally:
        await transport.aclose()


async def test_a_get_through_the_client_builds_no_httpx_request_or_response(monkeypatch):
    """Each GET goes to the pool as a URL and header pairs and comes back as an `Answer`: building
    an httpx.Request and an httpx.Response for each cost about a sixth of the client's CPU per request."""
    from jofi_pipeline.api import JofiClient

    async def handler(reader, writer):
        while await reader.readuntil(b"\r\n\r\n"):
            body = b'{"mode":"live","object":"test_taker","id":7}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()

    def built(*args, **kwargs):
        raise AssertionError("an httpx object was built for a GET")

    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    async with server, JofiClient("sk_live_" + "a" * 24, base_url=url.removesuffix("/x")) as client:
        monkeypatch.setattr(httpx.Request, "__init__", built)
        monkeypatch.setattr(httpx.Response, "__init__", built)
        for _ in range(3):
            assert await client.get("test_takers", 7) == {"mode": "live", "object": "test_taker", "id": 7}


async def test_the_direct_get_sends_the_path_and_query_httpx_writes():
    """aiohttp would quote the URL again (yarl): `%2F` and `%2C` in a cursor would go out as `/` and `,`."""
    from jofi_pipeline.api.request_builder import RequestBuilder

    lines: list[bytes] = []

    async def handler(reader, writer):
        while head := await reader.readuntil(b"\r\n\r\n"):
            lines.append(head.split(b"\r\n", 1)[0])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    builder = RequestBuilder(url, {"Accept": "application/json"}, httpx.Timeout(5.0).as_dict())
    params = {"limit": 100, "cursor": "eyJ 9+/=,;!*'()~"}
    transport = pooled_transport(2)
    try:
        async with server:
            answer = await transport.get_whole(*builder.target("/a%2Fb/%41", params), httpx.Timeout(5.0).as_dict())
    finally:
        await transport.aclose()
    assert answer.status_code == 200 and answer.content == b"{}"
    expected = builder.get("/a%2Fb/%41", params).url.raw_path
    assert b"%2F" in expected and lines == [b"GET " + expected + b" HTTP/1.1"]


def test_an_answer_parses_its_headers_only_when_asked_and_as_httpx_does():
    answer = Answer(429, [(b"Retry-After", b"2"), (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")], b"{}")
    assert answer._headers is None  # not parsed until read
    assert answer.headers["retry-after"] == "2"
    assert answer.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert (answer.status_code, answer.content) == (429, b"{}")


async def test_a_cookie_a_server_sets_is_never_sent_back_to_a_named_host():
    """aiohttp's session keeps a cookie jar (it skips only IP addresses): the client's has none."""
    from jofi_pipeline.api import ClientConfig, JofiClient

    seen, handler = _setting_a_cookie(b'{"mode":"live","object":"account","id":1}')
    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    named = url.removesuffix("/x").replace("127.0.0.1", "localhost")
    async with server, JofiClient("sk_live_" + "a" * 24, base_url=named, config=ClientConfig(max_retries=0)) as client:
        for _ in range(3):
            await client.get("account")
    assert len(seen) == 3
    assert all(b"cookie:" not in head.lower() for head in seen), seen


def _setting_a_cookie(body: bytes, headers: bytes = b""):
    """A server's handler answering every request with `body` and a Set-Cookie (a load balancer's),
    and the list of the request heads it saw."""
    seen: list[bytes] = []

    async def handler(reader, writer):
        while head := await reader.readuntil(b"\r\n\r\n"):
            seen.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headers
                         + b"Set-Cookie: lb=node-7; Path=/\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()

    return seen, handler


async def _quietly(coro) -> None:
    try:
        await coro
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass


def tls_context_of(client) -> "ssl.SSLContext":
    return client._transport._http.ssl_context  # JofiClient -> Transport -> the httpx transport on aiohttp


@pytest.mark.parametrize("url", ["https://www.jofiscore.com/api/v2", "HTTPS://jofi.example/api/v2"])
async def test_an_https_api_is_verified_against_the_ca_bundle_loaded_once_per_process(url):
    from jofi_pipeline.api import JofiClient

    first = JofiClient("sk_live_" + "a" * 24, base_url=url)
    second = JofiClient("sk_live_" + "b" * 24, base_url=url)
    try:
        context = tls_context_of(first)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is there
        assert tls_context_of(second) is context  # loaded once, not per client
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_http_api_loads_no_ca_bundle_and_its_context_trusts_nothing():
    from jofi_pipeline.api import JofiClient

    client = JofiClient("sk_live_" + "a" * 24, base_url="http://127.0.0.1:9/api/v2")
    try:
        context = tls_context_of(client)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname  # fails closed
        assert context.cert_store_stats()["x509_ca"] == 0
    finally:
        await client.aclose()


async def test_a_client_sends_no_cookie_back_and_reads_a_gzipped_answer_over_real_sockets(monkeypatch):
    """JOFI sets no cookies; a proxy or load balancer might. The client keeps no cookie jar (each
    GET goes straight to the pool), so nothing a server sets is echoed on the next request."""
    import gzip

    from jofi_pipeline.api import ClientConfig, JofiClient

    seen, handler = _setting_a_cookie(gzip.compress(b'{"mode":"live","object":"account","id":1}'), b"Content-Encoding: gzip\r\n")
    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    monkeypatch.setenv("JOFI_LIVE_API_KEY", "sk_live_UnitTestKey123")
    async with server, JofiClient.from_env("live", base_url=url.removesuffix("/x"), config=ClientConfig(max_retries=0)) as client:
        assert await client.get("account") == {"mode": "live", "object": "account", "id": 1}
        assert await client.get("account") == {"mode": "live", "object": "account", "id": 1}
    assert len(seen) == 2
    assert all(b"cookie:" not in head.lower() for head in seen)
    assert all(b"authorization: bearer sk_live_unittestkey123" in head.lower() for head in seen)


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n"],
                         ids=["bad_status_line", "header_line_too_long"])
async def test_an_answer_that_is_not_http_is_unreachable_and_no_error_holds_the_key(answer):
    """aiohttp's error for such an answer carries the request's headers (the key) and httpx-aiohttp
    maps none: it escaped the client as itself, the key in its args and repr."""
    from jofi_pipeline.api import ClientConfig, JofiClient
    from jofi_pipeline.api.errors import ApiUnreachableError

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    key = "sk_live_" + "Q" * 24
    server, url = await serve(lambda r, w: _quietly(handler(r, w)))
    config = ClientConfig(max_retries=1, initial_backoff=0.01, max_backoff=0.01)
    async with server, JofiClient(key, base_url=url.removesuffix("/x"), config=config) as client:
        with pytest.raises(ApiUnreachableError) as raised:
            await client.get("account")
    chain, error = [], raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(key not in repr(e) and key not in repr(e.args) for e in chain), [type(e) for e in chain]
