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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence

import aiohttp
import httpx
from aiohttp import hdrs
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from yarl import URL

from jofi_pipeline.api.redact import redact_text

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


class Answer:
    """A GET's answer read whole, as the client reads it: `status_code`, `headers` and `content`,
    the names an `httpx.Response` gives them. Building an `httpx.Response` for each answer (its
    headers, a byte stream run through a content decoder, read back) cost about a tenth of the
    client's CPU per request; the headers are parsed here only when asked for (a retry's
    Retry-After). A body with a Content-Encoding still comes as an `httpx.Response`, decoded by it."""

    __slots__ = ("status_code", "content", "_raw_headers", "_headers")

    def __init__(self, status_code: int, raw_headers: Sequence[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status_code
        self.content = content
        self._raw_headers = raw_headers
        self._headers: httpx.Headers | None = None

    @property
    def headers(self) -> httpx.Headers:
        if self._headers is None:
            self._headers = httpx.Headers(self._raw_headers)
        return self._headers


def reads_whole(transport: httpx.AsyncBaseTransport) -> Callable[..., Awaitable[Answer | httpx.Response]] | None:
    """The direct GET of the client's own transport (`pooled_transport`), None for any other one
    (`httpx.MockTransport` in tests, a caller's own): those get `httpx.Request`s as usual."""
    return transport.get_whole if isinstance(transport, _HonestAiohttpTransport) else None


class _HonestAiohttpTransport(AiohttpTransport):
    def get_client(self) -> aiohttp.ClientSession:
        """httpx-aiohttp's session, without a cookie jar: the client sends no cookie a server set
        (JOFI sets none; a load balancer might), as with httpx, and no jar is searched per request."""
        if self.client is not None or self.uds or self.local_address:
            return super().get_client()
        limit = {"limit": self.limits.max_connections} if self.limits.max_connections is not None else {}
        connector = aiohttp.TCPConnector(keepalive_timeout=self.limits.keepalive_expiry, ssl=self.ssl_context, **limit)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.proxy is None and not request.headers.get("content-length"):
            return await self._get(request)
        with _mapped():
            response = await super().handle_async_request(request)
        response.stream = _HonestStream(response.stream)
        return response

    async def get_whole(self, url: str, headers: Iterable[tuple[str, str]], timeout: Mapping[str, float | None]) -> Answer | httpx.Response:
        """GET `url` with these headers (`RequestBuilder.target`), read whole; httpx's exceptions,
        as `handle_async_request` raises them. No `httpx.Request` is needed, none is built.

        The URL is sent as written: it is httpx's text already (quoted as httpx quotes), which
        yarl would otherwise parse and quote again (~11 µs a URL, and `%2F` in a query came out `/`)."""
        answer, body = await self._read(URL(url, encoded=True), headers, timeout, None)
        if hdrs.CONTENT_ENCODING in answer.headers:
            return httpx.Response(answer.status, headers=answer.raw_headers, content=body)
        return Answer(answer.status, answer.raw_headers, body)

    async def _get(self, request: httpx.Request) -> httpx.Response:
        """A GET read whole, the way every JSON answer is read anyway: about 0.3 ms of CPU less per
        request than streaming it through httpx (measured on a by-id fan-out at concurrency 16).

        The headers go to aiohttp as plain pairs: handed an `httpx.Headers`, aiohttp reads it
        through the mapping interface, which decodes every header again on every access."""
        answer, body = await self._read(
            str(request.url),
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw],
            request.extensions.get("timeout", {}), request.extensions.get("sni_hostname"),
        )
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        # `content` is decoded by httpx as a stream would be (Content-Encoding included).
        return httpx.Response(answer.status, headers=answer.raw_headers, content=body, request=request, extensions=extensions)

    async def _read(
        self, url: str | URL, headers: Iterable[tuple[str, str]], timeout: Mapping[str, float | None], server_hostname: str | None
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        try:
            async with self.client.request(
                "GET", url, headers=headers, allow_redirects=False, auto_decompress=False, compress=False,
                timeout=_client_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
                server_hostname=server_hostname,
            ) as answer:
                return answer, await answer.read()
        except aiohttp.ClientResponseError as exc:
            said = str(exc.message)
        except Exception as exc:  # mapped here only: entering the two mappers costs every request ~4 µs
            with _mapped(), map_aiohttp_exceptions():
                raise exc  # noqa: TRY201 - re-raised inside the mappers, which turn it into httpx's
        # An answer aiohttp cannot read as HTTP (a bad status line, a header line too long): httpx-
        # aiohttp maps no such error, and aiohttp's carries the request's headers, the key among
        # them, in its args and repr. Said as httpx's protocol error, raised here, outside the
        # `except`, so that error is neither its cause nor its context.
        raise httpx.RemoteProtocolError(redact_text(f"the server's answer is not HTTP the client can read: {said}"[:300]))


@functools.lru_cache(maxsize=8)
def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's (one per client's settings, not one per request)."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
