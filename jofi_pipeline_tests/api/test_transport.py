"""Retries, Retry-After, backoff, error mapping and request bookkeeping, against httpx.MockTransport."""

from __future__ import annotations

import email.utils
import logging
import random
import time

import httpx
import pytest

from jofi_pipeline.api import (
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    ClientConfig,
    ConfigError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedStatusError,
)
from jofi_pipeline.api import transport
from jofi_pipeline.api.transport import backoff_delay, parse_retry_after

from .helpers import FAST, LIVE_KEY, Script, error, make_client, ok, raw

ACCOUNT = {"mode": "live", "object": "account", "id": 68, "brand_new_field": {"x": None}}


def retry_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "jofi_pipeline.api" and hasattr(r, "jofi_reason")]


async def test_sends_bearer_key_accept_and_only_gets():
    script = Script(ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT  # raw object kept whole, unknown fields included
    (request,) = script.requests
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bearer {LIVE_KEY}"
    assert str(request.url) == "http://jofi.example:8080/api/v2/accounts"


async def test_healthcheck_sends_no_key_and_accepts_any_2xx_body():
    script = Script(raw(204, b""))
    async with make_client(script) as client:
        assert await client.healthcheck() == {}
    assert "Authorization" not in script.requests[0].headers
    assert script.requests[0].url.path == "/api/v2/healthcheck"


async def test_healthcheck_failure_names_host_and_what_to_check():
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    async with make_client(script) as client:
        with pytest.raises(ApiUnreachableError) as info:
            await client.healthcheck()
    assert "jofi.example:8080" in str(info.value) and "JOFI_API_BASE_URL" in str(info.value)
    assert script.count == 1 + FAST.healthcheck_retries


async def test_healthcheck_404_says_check_the_base_url():
    script = Script(raw(404, "<html>Not Found</html>"))
    async with make_client(script) as client:
        with pytest.raises(ApiUnreachableError, match="/api/v2") as info:
            await client.healthcheck()
    assert info.value.status == 404


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_then_succeeds(status, caplog):
    caplog.set_level(logging.DEBUG)
    script = Script(error(status, "api_error", "boom"), ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT
        assert client.request_counts() == {"/accounts": 2}
        assert client.requests_total == 2
    (record,) = retry_records(caplog)
    assert record.jofi_route == "/accounts" and record.jofi_attempt == 2
    assert f"status_{status}" in record.jofi_reason and 0 <= record.jofi_delay <= FAST.max_backoff
    assert "/accounts" in record.getMessage() and "jofi.example" not in record.getMessage()


async def test_5xx_after_all_retries_is_server_error():
    script = Script(error(503, "api_error", "down for maintenance"))
    async with make_client(script) as client:
        with pytest.raises(ServerError) as info:
            await client.get("account")
    assert script.count == FAST.max_retries + 1
    err = info.value
    assert (err.status, err.route, err.error_type, err.error_message) == (503, "/accounts", "api_error", "down for maintenance")


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_are_not_retried_and_name_the_env_var(status):
    script = Script(error(status, "authentication_error", "Invalid API key"))
    async with make_client(script) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("account")
    assert script.count == 1
    assert "JOFI_LIVE_API_KEY" in str(info.value) and info.value.status == status
    assert info.value.fatal


async def test_server_echoing_the_key_in_an_error_is_redacted():
    script = Script(error(401, "authentication_error", f"Invalid API key provided: {LIVE_KEY}"))
    async with make_client(script) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("account")
    assert LIVE_KEY not in str(info.value) and LIVE_KEY not in repr(info.value)
    assert LIVE_KEY not in (info.value.error_message or "")


async def test_400_and_404_map_to_their_errors_without_retry():
    script = Script(error(400, "invalid_request_error", "unknown sp"), error(404, "not_found_error", "no such test taker"))
    async with make_client(script) as client:
        with pytest.raises(BadRequestError) as bad:
            await client.get("scorecards", (1, "NOPE"))
        with pytest.raises(NotFoundError) as missing:
            await client.get("test_takers", 42)
    assert script.count == 2
    assert bad.value.route == "/test-takers/{test_taker_id}/scorecard" and bad.value.error_message == "unknown sp"
    assert missing.value.route == "/test-takers/{test_taker_id}" and missing.value.error_type == "not_found_error"
    assert script.requests[0].url.params["sp"] == "NOPE"


@pytest.mark.parametrize(
    ("body", "expected_message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", None),
        (b'{"message": "gone fishing"}', "gone fishing"),
        (b'{"error": "plain string error"}', "plain string error"),
        (b'["a", "list"]', '["a", "list"]'),
        (b'{"error": {"code": 7}}', '{"code": 7}'),
        (b"\xff\xfe not utf8", "\ufffd\ufffd not utf8"),
    ],
)
async def test_odd_error_bodies_are_described_not_crashed_on(body, expected_message):
    script = Script(raw(404, body, **{"content-type": "text/html"}))
    async with make_client(script) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get("invitations", 5)
    assert info.value.error_type is None
    assert info.value.error_message == expected_message
    assert "404" in str(info.value)


async def test_other_4xx_is_unexpected_status_not_retried():
    script = Script(raw(405, "Method Not Allowed"))
    async with make_client(script) as client:
        with pytest.raises(UnexpectedStatusError):
            await client.get("account")
    assert script.count == 1


async def test_retry_after_seconds_is_honoured(caplog):
    caplog.set_level(logging.INFO)
    script = Script(error(429, "rate_limit_error", "slow down", **{"Retry-After": "0.3"}), ok(ACCOUNT))
    async with make_client(script) as client:
        started = time.monotonic()
        assert await client.get("account") == ACCOUNT
        elapsed = time.monotonic() - started
    assert 0.28 <= elapsed < 2
    (record,) = retry_records(caplog)
    assert record.jofi_delay == pytest.approx(0.3) and "Retry-After" in record.jofi_reason


async def test_retry_after_http_date_is_honoured(caplog):
    caplog.set_level(logging.INFO)
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    script = Script(error(429, "rate_limit_error", "slow down", **{"Retry-After": when}), ok(ACCOUNT))
    async with make_client(script) as client:
        started = time.monotonic()
        assert await client.get("account") == ACCOUNT
        elapsed = time.monotonic() - started
    (record,) = retry_records(caplog)
    # HTTP-dates have whole seconds: the second after this one is up to a second away. The reason
    # names Retry-After only when the date was read (a backoff's delay could be as short).
    assert "Retry-After" in record.jofi_reason and 0.0 <= record.jofi_delay <= 1.05
    assert elapsed >= record.jofi_delay - 0.05


@pytest.mark.timeout(10)
async def test_retry_after_above_cap_fails_fast_saying_how_long():
    script = Script(error(429, "rate_limit_error", "come back tomorrow", **{"Retry-After": "3600"}), ok(ACCOUNT))
    config = ClientConfig(max_retry_after=30, initial_backoff=0.001, max_backoff=0.01)
    async with make_client(script, config=config) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as info:
            await client.get("account")
        assert time.monotonic() - started < 0.5
    assert script.count == 1
    assert "3600s" in str(info.value) and "30s" in str(info.value)
    assert info.value.retry_after == 3600 and info.value.status == 429


@pytest.mark.timeout(10)
async def test_http_date_retry_after_above_cap_fails_fast():
    when = email.utils.formatdate(time.time() + 7200, usegmt=True)
    script = Script(error(429, "rate_limit_error", "later", **{"Retry-After": when}))
    async with make_client(script) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get("account")
    assert script.count == 1 and 7190 <= info.value.retry_after <= 7201


@pytest.mark.timeout(20)
async def test_a_429_storm_with_retry_after_outlasts_the_ordinary_retry_budget(monkeypatch):
    """Retry-After says when to come back: honouring it does not use up max_retries (3 here)."""
    monkeypatch.setattr(transport, "RESUME_SPREAD_SECONDS", 0.001)  # the herd's spread is not the subject
    storm = [error(429, "rate_limit_error", "slow down", **{"Retry-After": "0.01"}) for _ in range(8)]
    script = Script(*storm, ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT
    assert script.count == 9


@pytest.mark.timeout(20)
async def test_a_429_storm_beyond_its_own_budget_fails_as_rate_limited(monkeypatch):
    monkeypatch.setattr(transport, "RESUME_SPREAD_SECONDS", 0.001)  # the herd's spread is not the subject
    script = Script(error(429, "rate_limit_error", "slow down", **{"Retry-After": "0.01"}))
    config = ClientConfig(initial_backoff=0.001, max_backoff=0.01, max_retries=3, max_rate_limited_retries=5)
    async with make_client(script, config=config) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get("account")
    assert script.count == 6
    assert "honoured 5 times" in str(info.value)


async def test_429_without_retry_after_backs_off_then_gives_up_as_rate_limited():
    script = Script(error(429, "rate_limit_error", "slow down"))
    async with make_client(script) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get("account")
    assert script.count == FAST.max_retries + 1
    assert "requests_per_second" in str(info.value)


@pytest.mark.parametrize(
    "bad_body",
    [
        raw(200, b'{"mode": "live", "object": "acc'),  # truncated
        raw(200, b"<html>oops</html>"),
        raw(200, b""),
        raw(200, b'["mode", "live"]'),
    ],
)
async def test_malformed_2xx_is_retried(bad_body, caplog):
    caplog.set_level(logging.INFO)
    script = Script(bad_body, ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT
    assert script.count == 2
    assert "malformed_body" in retry_records(caplog)[0].jofi_reason


async def test_malformed_2xx_after_all_retries_is_malformed_response_error():
    script = Script(raw(200, b'{"truncated'))
    async with make_client(script) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.get("account")
    assert script.count == FAST.max_retries + 1 and info.value.status == 200


@pytest.mark.parametrize(
    "fault",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset"),
    ],
)
async def test_transport_faults_are_retried(fault):
    script = Script(fault, ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT
    assert script.count == 2


async def test_persistent_connect_errors_become_unreachable_naming_host():
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    async with make_client(script) as client:
        with pytest.raises(ApiUnreachableError) as info:
            await client.list("teams")
    assert script.count == FAST.max_retries + 1
    assert "jofi.example:8080" in str(info.value) and info.value.route == "/teams"


async def test_a_hung_request_times_out_and_is_retried():
    import asyncio

    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)  # hangs past the attempt timeout
        return ok(ACCOUNT)

    config = ClientConfig(attempt_timeout=0.2, initial_backoff=0.001, max_backoff=0.01)
    async with make_client(handler, config=config) as client:
        started = time.monotonic()
        assert await client.get("account") == ACCOUNT
        assert time.monotonic() - started < 2
    assert calls == 2


def test_backoff_is_full_jitter_and_bounded():
    rng = random.Random(1)
    for retry in range(1, 30):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        delays = [backoff_delay(retry, 0.5, 8.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the range, not a constant


async def test_logged_delays_never_exceed_max_backoff(caplog):
    caplog.set_level(logging.INFO)
    config = ClientConfig(max_retries=8, initial_backoff=0.001, max_backoff=0.004)
    script = Script(error(500, "api_error", "x"))
    async with make_client(script, config=config) as client:
        with pytest.raises(ServerError):
            await client.get("account")
    delays = [r.jofi_delay for r in retry_records(caplog)]
    assert len(delays) == 8 and all(0 <= d <= 0.004 for d in delays)


def test_parse_retry_after_forms():
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after": "5"}, now) == 5
    assert parse_retry_after({"retry-after": "1.5"}, now) == 1.5
    assert parse_retry_after({"retry-after": "-3"}, now) == 0
    assert parse_retry_after({"retry-after-ms": "250"}, now) == 0.25
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, now) == 0
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({}, now) is None


async def test_a_429_pauses_every_request_not_just_its_own():
    """After a 429 with Retry-After, requests already waiting do not hammer the server."""
    import asyncio

    seen: list[float] = []
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        seen.append(time.monotonic())
        if first:
            first = False
            return error(429, "rate_limit_error", "slow", **{"Retry-After": "0.3"})
        return ok(ACCOUNT)

    config = ClientConfig(max_concurrency=1, initial_backoff=0.001, max_backoff=0.01)
    async with make_client(handler, config=config) as client:
        await asyncio.gather(client.get("account"), client.get("account"), client.get("account"))
    assert len(seen) == 4
    assert all(t - seen[0] >= 0.28 for t in seen[1:])


async def test_rate_limit_is_proactive():
    config = ClientConfig(requests_per_second=50, max_concurrency=8)
    script = Script(ok(ACCOUNT))
    async with make_client(script, config=config) as client:
        import asyncio

        started = time.monotonic()
        await asyncio.gather(*(client.get("account") for _ in range(21)))
        elapsed = time.monotonic() - started
    assert elapsed >= 0.29  # 21 requests at 50/s with a burst of at most 5: 16 wait 1/50 s each


async def test_concurrency_is_bounded():
    import asyncio

    active = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return ok(ACCOUNT)

    config = ClientConfig(max_concurrency=3)
    async with make_client(handler, config=config) as client:
        await asyncio.gather(*(client.get("account") for _ in range(20)))
    assert peak == 3


@pytest.mark.parametrize(
    "fault",
    [httpx.ProxyError("407 Proxy Authentication Required"), httpx.LocalProtocolError("illegal header value")],
)
async def test_other_transport_errors_are_retried_as_unreachable(fault, caplog):
    caplog.set_level(logging.INFO)
    script = Script(fault, ok(ACCOUNT))
    async with make_client(script) as client:
        assert await client.get("account") == ACCOUNT
    assert script.count == 2
    assert retry_records(caplog)[0].jofi_reason.startswith(f"transport_error ({type(fault).__name__}")

    script = Script(fault)
    async with make_client(script) as client:
        with pytest.raises(ApiUnreachableError) as info:
            await client.list("teams")
    assert script.count == FAST.max_retries + 1
    assert "jofi.example:8080" in str(info.value) and type(fault).__name__ in str(info.value)
    assert info.value.route == "/teams"


async def test_unsupported_protocol_is_a_config_error_naming_the_base_url_env_var():
    script = Script(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."))
    async with make_client(script) as client:
        with pytest.raises(ConfigError, match="JOFI_API_BASE_URL") as info:
            await client.list("teams")
    assert script.count == 1  # not retried
    assert info.value.fatal and info.value.route == "/teams" and LIVE_KEY not in str(info.value)
