"""One GET, made patiently: rate limit, concurrency, timeouts, retries, Retry-After, backoff.

Modelled on openai-python's `_base_client.py`: a hand-written loop (rather than tenacity) because
the retry decision needs the response itself (status, Retry-After, body shape) and the shared
pause after a 429 must be visible to every request in flight, which a per-call decorator cannot do.

What is retried: 408, 429, 5xx, timeouts, connection, proxy and other transport errors (including
a body cut off mid-way), and 2xx bodies that are not JSON or not the expected shape. What is not:
400/401/403/404 and other 4xx, a mode mismatch, and an unsupported URL scheme (a ConfigError).
Each retry is logged on `jofi_pipeline.api` with the route template, the attempt, the reason and
the delay; never the key, never a full URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from jofi_pipeline import json_codec
from jofi_pipeline.api import errors
from jofi_pipeline.api.config import ClientConfig
from jofi_pipeline.api.http import Answer, pooled_transport, reads_whole
from jofi_pipeline.api.request_builder import RequestBuilder
from jofi_pipeline.api.redact import SecretKey, redact_text, safe_host, safe_url

log = logging.getLogger("jofi_pipeline.api")

RETRYABLE_STATUSES = frozenset({408, 429, *range(500, 600)})
RETRY_AFTER_HEADER = "retry-after"
RETRY_AFTER_MS_HEADER = "retry-after-ms"
RESUME_SPREAD_SECONDS = 0.25

_URL_PATTERN = re.compile(r"https?://\S+")


class BodyShapeError(Exception):
    """Raised by a response check: the 2xx body parsed but is not the shape we need (retried)."""


ResponseCheck = Callable[[dict[str, Any]], None]


@dataclass
class RequestCounts:
    """HTTP requests actually sent (retries included), per route template; for sync reports."""

    by_route: Counter[str] = field(default_factory=Counter)
    retries_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_route.values())


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, or `Retry-After` as seconds or HTTP-date."""
    raw_ms = headers.get(RETRY_AFTER_MS_HEADER)
    if raw_ms is not None:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get(RETRY_AFTER_HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


def backoff_delay(retry_number: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(maximum, initial * 2**(retry_number-1)))."""
    ceiling = min(maximum, initial * (2 ** max(retry_number - 1, 0)))
    return rng.uniform(0.0, ceiling)


@dataclass
class _Failure:
    """Why an attempt failed, and the error to raise if no attempt is left."""

    reason: str
    error: errors.JofiApiError
    retry_after: float | None = None


class Transport:
    """Owns the one httpx transport (its connection pool), the limiter and the semaphore; answers with JSON objects."""

    def __init__(
        self,
        *,
        base_url: str,
        key: SecretKey,
        key_env_var: str,
        config: ClientConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._host = safe_host(base_url)
        self._key = key
        self._key_env_var = key_env_var
        self._config = config
        self._rng = rng or random.Random()
        self.counts = RequestCounts()
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._limiter = _make_limiter(config)
        self._resume_at = 0.0  # loop time before which nobody sends (set by a 429's Retry-After)
        # Requests go straight to the httpx transport: an AsyncClient would add, per request, the
        # merge of its defaults into each request, a cookie jar (JOFI sets no cookies; parsing each
        # answer for them cost ~0.25 ms) and redirect and auth hooks we never use (redirects are
        # never followed). What it set for us is set here: timeouts, the headers, the pool.
        self._http = transport or pooled_transport(config.max_concurrency, tls=not self._base_url.lower().startswith("http://"))
        # Our own pool takes a GET as a URL and header pairs, and answers without an httpx.Response.
        self._get_whole = reads_whole(self._http)
        self._timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.write_timeout,
            pool=config.attempt_timeout,
        ).as_dict()
        self._closed = False
        self._requests = RequestBuilder(
            self._base_url, {"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "User-Agent": config.user_agent},
            self._timeout,
        )

    @property
    def host(self) -> str:
        return self._host

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()

    async def _send(self, path: str, params: Mapping[str, Any] | None, authorization: str | None) -> httpx.Response | Answer:
        """One GET through the transport, its body read (and the connection handed back)."""
        if self._closed:
            raise RuntimeError("this JOFI client is closed: open a new one (async with JofiClient.from_env(...))")
        if self._get_whole is not None:
            return await self._get_whole(*self._requests.target(path, params, authorization), self._timeout)
        request = self._requests.get(path, params, authorization)
        response = await self._http.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def get_json(
        self,
        route: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
        check: ResponseCheck | None = None,
        max_retries: int | None = None,
        lenient_body: bool = False,
    ) -> dict[str, Any]:
        """GET base_url+path; return the JSON object, retrying transient faults; raise typed errors.

        `lenient_body`: a 2xx whose body is not a JSON object is returned as {} (healthcheck).
        """
        retries = self._config.max_retries if max_retries is None else max_retries
        rate_limited_retries = self._config.max_rate_limited_retries if retries else 0
        other_failures = told_to_wait = 0
        for attempt in itertools.count(1):
            failure = await self._attempt(route, path, params, authenticated, check, retries, lenient_body)
            if isinstance(failure, dict):
                return failure
            # A 429 with Retry-After draws on its own budget; everything else on `retries`.
            if failure.error.status == 429 and failure.retry_after is not None:
                told_to_wait += 1
                exhausted = told_to_wait > rate_limited_retries
            else:
                other_failures += 1
                exhausted = other_failures > retries
            if exhausted:
                log.debug("giving up on GET %s after %d attempts: %s", route, attempt, failure.reason)
                raise failure.error
            delay = failure.retry_after
            if delay is None:
                delay = backoff_delay(other_failures, self._config.initial_backoff, self._config.max_backoff, self._rng)
            self.counts.retries_by_reason[failure.reason.split(" ", 1)[0]] += 1
            log.info(
                "retrying GET %s (attempt %d) in %.2fs: %s",
                route, attempt + 1, delay, failure.reason,
                extra={"jofi_route": route, "jofi_attempt": attempt + 1, "jofi_delay": delay,
                       "jofi_reason": failure.reason},
            )
            if failure.retry_after is not None and failure.error.status == 429:
                # Everybody waits: the limit is per key, so other requests would only earn more 429s.
                loop = asyncio.get_running_loop()
                self._resume_at = max(self._resume_at, loop.time() + delay)
            else:
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        route: str,
        path: str,
        params: Mapping[str, Any] | None,
        authenticated: bool,
        check: ResponseCheck | None,
        retries: int,
        lenient_body: bool,
    ) -> dict[str, Any] | _Failure:
        authorization = f"Bearer {self._key.reveal()}" if authenticated else None
        try:
            async with self._semaphore:
                await self._wait_for_resume()
                if self._limiter is not None:
                    await self._limiter.acquire()
                self.counts.by_route[route] += 1
                async with asyncio.timeout(self._config.attempt_timeout):
                    response = await self._send(path, params, authorization)
        except (httpx.TimeoutException, TimeoutError) as exc:
            return _Failure(
                f"timeout ({type(exc).__name__})", errors.unreachable(route, self._host, "timed out", exc, retries)
            )
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return _Failure(
                f"connection_error ({type(exc).__name__}: {_safe_exc_text(exc)})",
                errors.unreachable(route, self._host, "lost the connection", exc, retries),
            )
        except httpx.DecodingError as exc:
            return _Failure(f"malformed_body (undecodable: {type(exc).__name__})", errors.undecodable_body(route))
        except httpx.UnsupportedProtocol as exc:
            raise errors.unsupported_protocol(route, self._base_url, exc) from None
        except httpx.TransportError as exc:
            # The rest (ProxyError, LocalProtocolError, future kinds): typed and retried like a
            # dropped connection, so the sync reports "unreachable", never a bare httpx class.
            return _Failure(
                f"transport_error ({type(exc).__name__}: {_safe_exc_text(exc)})",
                errors.unreachable(route, self._host, "could not be reached (proxy or transport error)", exc, retries),
            )
        finally:
            authorization = None  # drop the only local that holds the key as soon as it has been sent

        status = response.status_code
        if 200 <= status < 300:
            parsed = self._parse_success(route, response, check)
            return {} if lenient_body and isinstance(parsed, _Failure) else parsed
        if status in RETRYABLE_STATUSES:
            return self._retryable_status(route, response, retries)
        raise errors.refused(
            route, status, errors.ErrorBody.of(response.content), key_env_var=self._key_env_var, key_prefix=self._key.prefix
        )

    async def _wait_for_resume(self) -> None:
        loop = asyncio.get_running_loop()
        waited = False
        while (wait := self._resume_at - loop.time()) > 0:
            waited = True
            await asyncio.sleep(wait)
        if waited:
            # Spread the herd that a shared pause released, or it earns the next 429 together.
            await asyncio.sleep(self._rng.uniform(0.0, RESUME_SPREAD_SECONDS))

    def _parse_success(
        self, route: str, response: httpx.Response | Answer, check: ResponseCheck | None
    ) -> dict[str, Any] | _Failure:
        def malformed(why: str) -> _Failure:
            return _Failure(f"malformed_body ({why})", errors.malformed_body(route, response.status_code, why))

        try:
            body = json_codec.loads(response.content)
        except ValueError:
            return malformed("is not valid JSON (empty, truncated or not JSON)")
        if not isinstance(body, dict):
            return malformed(f"is JSON {type(body).__name__}, not an object")
        if check is not None:
            try:
                check(body)
            except BodyShapeError as exc:
                return malformed(str(exc))
        return body

    def _retryable_status(self, route: str, response: httpx.Response | Answer, retries: int) -> _Failure:
        status = response.status_code
        retry_after = parse_retry_after(response.headers)
        body = errors.ErrorBody.of(response.content)
        if retry_after is not None and retry_after > self._config.max_retry_after:
            raise errors.wait_too_long(route, status, body, retry_after, self._config.max_retry_after)
        if status == 429:
            error: errors.JofiApiError = errors.still_rate_limited(
                route, body, self._config.max_rate_limited_retries, retry_after
            )
        elif status == 408:
            error = errors.request_timeout(route, self._host, body, retries)
        else:
            error = errors.server_error(route, status, body, retries)
        reason = f"status_{status}"
        if retry_after is not None:
            reason += f" (Retry-After {retry_after:.2f}s)"
        elif body.type:
            reason += f" ({body.type})"
        return _Failure(reason, error, retry_after)


def _make_limiter(config: ClientConfig) -> AsyncLimiter | None:
    """Leaky bucket at `requests_per_second`, burst limited to `rate_burst_seconds` worth (>= 1)."""
    rate = config.requests_per_second
    if rate <= 0:
        return None
    burst = max(1.0, rate * config.rate_burst_seconds)
    return AsyncLimiter(max_rate=burst, time_period=burst / rate)


def _safe_exc_text(exc: BaseException) -> str:
    text = _URL_PATTERN.sub(lambda m: safe_url(m.group(0)), str(exc))
    return redact_text(text)[:120]
