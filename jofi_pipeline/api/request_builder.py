"""The client's GET requests, built from the base URL httpx parsed once.

httpx parses and quotes the whole URL string of every request it is handed, and builds the
request's headers and body from scratch: about 80 µs of CPU per request, more than a tenth of
what the client spends on one (2,000 test takers, no latency). Every path the client sends is a
route template with an id quoted with nothing left unsafe (client._request_of), and its queries
are a few strings again and again (a scorecard's profile, a list's limit and cursor). So a
request's URL is the parsed base URL with that path and query put in place, which is what
httpx's parse of the whole string gives (a test holds the two equal); its headers are a copy of
ones normalised once, and it has no body. A path with anything httpx would change (a character it
quotes, a dot segment) and a base URL httpx refuses go through httpx's parse, and fail as before.

`target` gives the same request as a URL string and header pairs, for the client's own aiohttp
transport (http.py), which sends those and needs no `httpx.Request` at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import httpx

# Unreserved characters, '/' and percent-escapes (as `urllib.parse.quote` writes them): what
# httpx's parse leaves as it is in a path, dot segments aside (checked apart). Checked as one
# character class and then the escapes, if any: an alternation tried at each character cost ~3 µs a path.
_PLAIN_CHARS = re.compile(r"[A-Za-z0-9\-._~/%]*")
_NOT_AN_ESCAPE = re.compile(r"%(?![0-9A-F]{2})")
_NO_BODY = httpx.ByteStream(b"")
_PARSE = object()  # RequestBuilder._quick_query: build this request with httpx's own parse

HeaderPairs = tuple[tuple[str, str], ...]


class _Pairs(tuple):
    """Header pairs whose repr names the headers only: one of them is the API key, so a log line or
    an error message that shows them does not show it. Not a guarantee for a traceback printed with
    its frames' locals (rich, sentry, pytest --showlocals): the transport's own frames and aiohttp's
    hold the key as a plain string too."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<headers {', '.join(name for name, _ in self)}>"


class RequestBuilder:
    """GET requests to one base URL, with the same headers (plus the key, when authenticated)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: Mapping[str, Any]) -> None:
        self._base_url = base_url
        self._plain_headers = dict(headers)
        self._extensions = {"timeout": timeout}
        try:
            base: httpx.URL | None = httpx.URL(base_url)
        except httpx.InvalidURL:
            base = None
        if base is None or not base.host or base.query or base.fragment or not _plain(base.path):
            self._parts = None  # every request through httpx's own parse (and its error)
        else:
            self._parts = base._uri_reference  # noqa: SLF001 - the parse httpx.URL keeps; see module doc
            self._headers = httpx.Headers({"Host": base.netloc.decode("ascii"), **headers})
            self._pairs = _pairs_of(self._headers)
            self._url_prefix = str(self._url(""))

    def get(self, path: str, params: Mapping[str, Any] | None = None, authorization: str | None = None) -> httpx.Request:
        """GET base_url + path (+ params), with `Authorization: authorization` when given."""
        query = self._quick_query(path, params)
        if query is _PARSE:
            return self._parsed(path, params, authorization)
        headers = httpx.Headers(self._headers)
        if authorization is not None:
            headers["Authorization"] = authorization
        return httpx.Request("GET", self._url(path, query), headers=headers, stream=_NO_BODY, extensions=self._extensions)

    def target(
        self, path: str, params: Mapping[str, Any] | None = None, authorization: str | None = None
    ) -> tuple[str, HeaderPairs]:
        """`get(...)`'s URL as a string and its headers as (name, value) pairs, in order, without
        building the request: the URL is the base URL's text with the path and query appended, which
        is what httpx writes for a path it leaves as it is (a test holds the two equal)."""
        query = self._quick_query(path, params)
        if query is _PARSE:
            request = self._parsed(path, params, authorization)
            return str(request.url), _pairs_of(request.headers)
        url = self._url_prefix + path if query is None else f"{self._url_prefix}{path}?{query}"
        if authorization is None:
            return url, self._pairs
        return url, _Pairs((*self._pairs, ("Authorization", authorization)))

    def _quick_query(self, path: str, params: Mapping[str, Any] | None) -> str | None | object:
        """The query string (None without params) when the path and params need no parse of httpx's;
        `_PARSE` when they do: a base URL httpx refuses, a path it would change, or several values
        for one name (a list: not a cache key)."""
        if self._parts is None or not _plain(path):
            return _PARSE
        try:
            return _query(tuple((name, type(value), value) for name, value in params.items())) if params else None
        except TypeError:
            return _PARSE

    def _url(self, path: str, query: str | None = None) -> httpx.URL:
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = self._parts._replace(path=self._parts.path + path, query=query)  # noqa: SLF001
        return url

    def _parsed(self, path: str, params: Mapping[str, Any] | None, authorization: str | None) -> httpx.Request:
        """The request as httpx builds it from the whole URL string."""
        headers = self._plain_headers if authorization is None else {**self._plain_headers, "Authorization": authorization}
        return httpx.Request("GET", self._base_url + path, params=params, headers=headers, extensions=self._extensions)


def _pairs_of(headers: httpx.Headers) -> HeaderPairs:
    return _Pairs((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers.raw)


def _plain(path: str) -> bool:
    return (
        _PLAIN_CHARS.fullmatch(path) is not None
        and ("%" not in path or _NOT_AN_ESCAPE.search(path) is None)
        and "/." not in path
    )


@functools.lru_cache(maxsize=256)
def _query(params: tuple[tuple[str, type, Any], ...]) -> str | None:
    """The query httpx writes for these params (a scorecard's profile comes back thousands of times).

    Keyed by each value's type too: True, 1 and 1.0 are one key to the cache, three values to httpx."""
    return httpx.URL("", params=[(name, value) for name, _, value in params]).query.decode("ascii") or None
