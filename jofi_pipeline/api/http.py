"""The connection layer under httpx: aiohttp's pool instead of httpcore's.

httpx stays the interface (requests, responses, timeouts, exceptions, `httpx.MockTransport` in
unit tests); only the socket work moves. Measured on a scorecard fan-out at concurrency 16,
httpcore spends about 1.9 ms of CPU per request (much of it pool bookkeeping: a readability check
and `getpeername` on every connection it hands out) where aiohttp's connector spends about 0.3 ms.

httpx-aiohttp maps aiohttp's failures onto httpx's exceptions coarsely (a refused or dropped
connection becomes a `ConnectTimeout`); `_honest` maps them onto the httpx exception the failure
really is, so "timed out" in an error message means a timeout.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

# How long an idle keep-alive connection is kept for the next request.
KEEPALIVE_SECONDS = 30.0


def pooled_transport(max_connections: int, *, tls: bool = True) -> httpx.AsyncBaseTransport:
    """Keep-alive connections, at most one per request in flight.

    `tls=False` for an `http://` API (the simulator): redirects are never followed, so no TLS is
    ever spoken, and the certificate store is not loaded (about 0.17 s of CPU per client, every
    sync). The context given instead verifies like the default one but trusts no CA at all, so
    should TLS ever happen on it, it fails closed."""
    return _HonestAiohttpTransport(
        verify=verifying_context() if tls else _trusts_nothing(),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
    )


def verifying_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process per certificate setting
    (SSL_CERT_FILE / SSL_CERT_DIR, which httpx reads): loading the CA bundle is the cost."""
    return _verifying_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _verifying_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=True, trust_env=True)


def _trusts_nothing() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    return context


def _honest(exc: httpx.TransportError) -> httpx.TransportError:
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        better: httpx.TransportError = httpx.ConnectError(str(cause))
    elif isinstance(cause, aiohttp.ServerDisconnectedError):
        better = httpx.RemoteProtocolError(str(cause) or "server disconnected")
    elif isinstance(cause, aiohttp.ClientOSError) and not isinstance(exc, httpx.TimeoutException):
        better = httpx.ReadError(str(cause))
    else:
        return exc
    better.__cause__ = cause
    return better


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        better = _honest(exc)
        if better is exc:
            raise
        raise better from exc.__cause__


class _HonestStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _mapped():
            await self._inner.aclose()


class _HonestAiohttpTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.proxy is None and not request.headers.get("content-length"):
            return await self._get(request)
        with _mapped():
            response = await super().handle_async_request(request)
        response.stream = _HonestStream(response.stream)
        return response

    async def _get(self, request: httpx.Request) -> httpx.Response:
        """A GET read whole, the way every JSON answer is read anyway: about 0.3 ms of CPU less per
        request than streaming it through httpx (measured on a by-id fan-out at concurrency 16).

        The headers go to aiohttp as plain pairs: handed an `httpx.Headers`, aiohttp reads it
        through the mapping interface, which decodes every header again on every access."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        with _mapped(), map_aiohttp_exceptions():
            async with self.client.request(
                "GET", str(request.url),
                headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw],
                allow_redirects=False, auto_decompress=False, compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            ) as answer:
                body = await answer.read()
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        # `content` is decoded by httpx as a stream would be (Content-Encoding included).
        return httpx.Response(answer.status, headers=answer.raw_headers, content=body, request=request, extensions=extensions)
