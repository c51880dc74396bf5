"""The key never reaches a log record, stderr, an exception's str/repr/args or a traceback."""

from __future__ import annotations

from functools import partial

import logging
import sys
import traceback

import httpx
import pytest

from jofi_pipeline.api import ClientConfig, JofiApiError, JofiClient
from jofi_pipeline.settings import redact_keys

from .helpers import BASE_URL, error, ok, page, raw

DISTINCTIVE = "sk_live_ZZsecretZZ4f9c2b7e1d"
SECRET_PART = "ZZsecretZZ"


def everything_visible(errors: list[BaseException], caplog, captured_err: str) -> str:
    """All text a person or a log pipeline could see from this run."""
    parts = [captured_err]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    for err in errors:
        parts += [str(err), repr(err), repr(err.args), repr(vars(err))]
        parts.append("".join(traceback.format_exception(err)))
        parts.append("".join(traceback.TracebackException.from_exception(err, capture_locals=True).format()))
    return "\n".join(parts)


def assert_no_key(text: str) -> None:
    assert DISTINCTIVE not in text
    assert SECRET_PART not in text


def faulty_handler():
    """Cycles through every kind of trouble, with the key echoed back in error bodies."""
    answers = [
        error(500, "api_error", f"crashed handling {DISTINCTIVE}"),
        raw(200, f'{{"mode": "live", "echo": "{DISTINCTIVE}'),  # truncated, with the key inside
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        error(429, "rate_limit_error", f"key {DISTINCTIVE} over limit", **{"Retry-After": "0"}),
        error(401, "authentication_error", f"Invalid API key provided: {DISTINCTIVE}"),
        error(404, "not_found_error", f"nothing for Bearer {DISTINCTIVE}"),
        raw(400, f"<html>bad request from {DISTINCTIVE}</html>"),
        ok({"mode": "test", "object": "account"}),  # mode mismatch
        error(429, "rate_limit_error", "later", **{"Retry-After": "99999"}),
        ok(page([1, 2], has_more=True)),
    ]
    counter = iter(range(10**9))

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[next(counter) % len(answers)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


async def test_key_never_visible_in_a_faulty_mock_run(caplog, capfd):
    caplog.set_level(logging.DEBUG)  # root and every library logger at DEBUG
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    logging.getLogger().addHandler(stderr_handler)
    errors: list[BaseException] = []
    try:
        config = ClientConfig(max_retries=2, initial_backoff=0.001, max_backoff=0.002, max_retry_after=5)
        client = JofiClient(api_key=DISTINCTIVE, base_url=BASE_URL, config=config,
                            transport=httpx.MockTransport(faulty_handler()))
        async with client:
            calls = [partial(client.get, "account"), partial(client.list, "teams"), partial(client.list, "invitations"),
                     lambda: client.get("scorecards", (1, "JOFI-295-AS")), lambda: client.get("career_navigation_profiles", "CNP1")]
            for _ in range(6):
                for call in calls:
                    try:
                        await call()
                    except JofiApiError as exc:
                        logging.getLogger("jofi_pipeline.test").exception("call failed: %s", exc)
                        errors.append(exc)
            try:
                async for outcome in client.fan_out(partial(client.get, "test_takers"), range(1, 21)):
                    if outcome.error is not None:
                        errors.append(outcome.error)
            except JofiApiError as exc:  # a fatal error (401, mode mismatch) stops the fan-out
                errors.append(exc)
            print(repr(client), client.request_counts(), client.counts, file=sys.stderr)
    finally:
        logging.getLogger().removeHandler(stderr_handler)
    captured = capfd.readouterr()
    assert errors, "the faulty run produced no errors, so it proved nothing"
    assert {type(e).__name__ for e in errors} >= {
        "AuthenticationError", "NotFoundError", "BadRequestError", "ModeMismatchError", "RateLimitedError"
    }
    assert any(r.name == "jofi_pipeline.api" for r in caplog.records)
    text = everything_visible(errors, caplog, captured.err + captured.out)
    assert_no_key(text)


def test_the_check_itself_can_fail(caplog):
    """Guard: the scan above really would see a key that leaked into a message or a local."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("jofi_pipeline.api").debug("oops %s", DISTINCTIVE)

    def leaky():
        key_in_a_local = DISTINCTIVE  # noqa: F841
        raise JofiApiError("no key in the message")

    with pytest.raises(JofiApiError) as info:
        leaky()
    with pytest.raises(AssertionError):
        assert_no_key(everything_visible([], caplog, ""))
    caplog.clear()
    with pytest.raises(AssertionError):
        assert_no_key(everything_visible([info.value], caplog, ""))


async def test_key_construction_errors_hide_the_key():
    with pytest.raises(JofiApiError) as info:
        JofiClient(api_key=DISTINCTIVE, mode="test", base_url=BASE_URL)
    assert_no_key(everything_visible([info.value], type("C", (), {"records": []})(), ""))


async def test_key_never_visible_in_a_faulty_run_against_the_simulator(make_simulator, caplog, capfd):
    """Every fault the simulator has, a wrong key, 404s and 400s, all logged at DEBUG."""
    caplog.set_level(logging.DEBUG)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    logging.getLogger().addHandler(stderr_handler)
    sim = make_simulator(test_takers=20, seed=13, live_key=DISTINCTIVE)
    assert sim.live_key == DISTINCTIVE
    sim.set_faults(error_rate=0.2, malformed_rate=0.1, truncated_rate=0.1, hang_rate=0.05, hang_seconds=3,
                   rate_limit_per_s=40, rate_limit_burst=5, seed=2)
    errors: list[BaseException] = []
    try:
        config = ClientConfig(max_retries=2, initial_backoff=0.01, max_backoff=0.05, read_timeout=0.4,
                              max_concurrency=8)
        async with JofiClient(api_key=DISTINCTIVE, mode="live", base_url=sim.base_url, config=config) as client:
            takers = [t["id"] for t in sim.truth("live")["test_takers"]]
            items = [*takers, 999999991, 999999992]
            for fetch in (partial(client.get, "test_takers"), lambda t: client.get("scorecards", (t, "NO-SUCH-SP")),
                          partial(client.get, "job_fit_reports")):
                async for outcome in client.fan_out(fetch, items):
                    if outcome.error is not None:
                        errors.append(outcome.error)
            for call in (partial(client.get, "account"), partial(client.list, "test_takers"), partial(client.list, "invitations"),
                         client.healthcheck):
                try:
                    await call()
                except JofiApiError as exc:
                    errors.append(exc)
            print(repr(client), client.counts, file=sys.stderr)
        async with JofiClient(api_key=DISTINCTIVE[:-3] + "xyz", base_url=sim.base_url, config=config) as wrong:
            with pytest.raises(JofiApiError) as info:
                await wrong.get("account")
            errors.append(info.value)
    finally:
        logging.getLogger().removeHandler(stderr_handler)
    captured = capfd.readouterr()
    kinds = {type(e).__name__ for e in errors}
    assert {"NotFoundError", "BadRequestError", "AuthenticationError"} <= kinds, kinds
    reasons = [getattr(r, "jofi_reason", "") for r in caplog.records]
    assert any(r.startswith("status_5") for r in reasons) and any(r.startswith("malformed") for r in reasons)
    assert_no_key(everything_visible(errors, caplog, captured.err + captured.out))
    assert "ZZsecretZZ4f9c2b7e" not in captured.err  # the wrong key shares all but its last 3 chars


def test_errors_redact_key_shaped_text_whoever_built_the_message():
    err = JofiApiError(f"caller put {DISTINCTIVE} in a message", error_message=f"server said {DISTINCTIVE}")
    assert_no_key(str(err) + repr(err) + repr(err.args) + repr(vars(err)))


@pytest.mark.parametrize("hint", ["sk_live_...", "sk_test_…", "sk_live_..._"])
def test_a_hint_that_names_only_the_prefix_is_kept_as_written(hint):
    """Our 401 message asks "is it the current sk_live_... key?": no letter or digit, so no key to hide."""
    message = f"check JOFI_LIVE_API_KEY (is it the current {hint} key for this account?)"
    assert redact_keys(message) == message


@pytest.mark.parametrize("body", ["...a9", "a", "ZZ.~+/=", "é", "_9"])
def test_a_key_with_any_letter_or_digit_is_still_hidden(body):
    assert redact_keys(f"key sk_live_{body} here") == "key sk_live_[redacted] here"
