"""The client against the running simulator: every route in both modes, and every kind of fault.

Faults are set per test through the `simulator` fixture (cleared before each test); the
simulator's own request stats show that the faults really fired, so a pass is not luck.
"""

from __future__ import annotations

from functools import partial

import asyncio
import itertools
import re
import time

import pytest

from jofi_pipeline.api import (
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    ClientConfig,
    JofiClient,
    NotFoundError,
)

# Fast retries: the simulator's faults are random, the retry budget generous.
PATIENT = dict(max_retries=10, initial_backoff=0.01, max_backoff=0.2)


def client_for(sim, mode: str = "live", **config) -> JofiClient:
    key = sim.live_key if mode == "live" else sim.test_key
    return JofiClient(api_key=key, mode=mode, base_url=sim.base_url, config=ClientConfig(**{**PATIENT, **config}))


def served_as(template: str) -> str:
    """Our template as the simulator's stats name it: "GET /test-takers/{id}/scorecard"."""
    return "GET " + re.sub(r"\{[a-z_]+\}", "{id}", template)


def statuses(sim, route: str | None = None) -> dict[str, int]:
    """Status -> count served by the simulator (one route template, or all)."""
    snapshot = sim.stats()
    totals: dict[str, int] = {}
    for template, entry in snapshot["routes"].items():
        if route is None or template == served_as(route):
            for status, n in entry["by_status"].items():
                totals[status] = totals.get(status, 0) + n
    return totals


async def scorecard_pairs(client: JofiClient, n: int) -> list[tuple[int, str]]:
    takers = [t["id"] for t in (await client.list("test_takers")).items]
    profiles = [p["short_name"] for p in (await client.list("score_profiles")).items]
    return list(itertools.islice(itertools.cycle(itertools.product(takers, profiles)), n))


async def fan_out_scorecards(client: JofiClient, pairs) -> tuple[list, list]:
    ok, failed = [], []
    async for outcome in client.fan_out(lambda pair: client.get("scorecards", pair), pairs):
        (ok if outcome.ok else failed).append(outcome)
    return ok, failed


@pytest.mark.parametrize("mode", ["live", "test"])
async def test_every_read_method_in_both_modes(simulator, mode):
    truth = simulator.truth(mode)
    async with client_for(simulator, mode) as client:
        assert await client.healthcheck() == {"status": "ok"}
        account = await client.get("account")
        assert account["mode"] == mode and account["id"] == truth["account"]["id"]
        lists = {}
        for name in ("users", "teams", "email_templates", "assessments", "score_profiles",
                     "invitations", "test_takers", "career_navigation_profiles"):
            result = await client.list(name)
            lists[name] = result
            truth_ids = {record["id"] for record in truth[name]}
            assert result.items and {item["id"] for item in result.items} <= truth_ids, name
            assert result.total_count == len(truth[name]), name
            assert result.capped == result.has_more, name  # the default simulator ignores cursors
        taker = lists["test_takers"].items[0]
        detail = await client.get("test_takers", taker["id"])
        assert detail["id"] == taker["id"] and "assigned_assessments" in detail
        invitation = await client.get("invitations", lists["invitations"].items[0]["id"])
        assert invitation["object"] == "invitation"
        profile = lists["career_navigation_profiles"].items[0]
        assert (await client.get("career_navigation_profiles", profile["id"]))["id"] == profile["id"]
        report = await client.get("job_fit_reports", profile["test_taker_id"])
        assert report["object"] == "job_fit_report"
        short_name = lists["score_profiles"].items[0]["short_name"]
        scorecard = await client.get("scorecards", (taker["id"], short_name))
        assert scorecard["object"] == "scorecard" and scorecard["test_taker_id"] == taker["id"]
        counts = client.request_counts()
    served = simulator.stats()["routes"]
    counts.pop("/healthcheck")  # the simulator does not count its healthcheck
    assert len(counts) == 14
    for template, n in counts.items():
        assert served[served_as(template)]["total"] == n, template  # the client counts what the server saw
        assert served[served_as(template)]["by_mode"].get(mode) == n, template


async def test_not_found_bad_request_and_a_404_inside_a_fan_out(simulator):
    async with client_for(simulator) as client:
        takers = [t["id"] for t in (await client.list("test_takers")).items[:5]]
        with pytest.raises(NotFoundError) as missing:
            await client.get("test_takers", 987654321987)
        assert missing.value.status == 404 and missing.value.error_type == "not_found_error"
        with pytest.raises(BadRequestError) as bad:
            await client.get("scorecards", (takers[0], "NOT-A-PROFILE"))
        assert bad.value.error_type == "invalid_request_error"
        outcomes = [o async for o in client.fan_out(partial(client.get, "test_takers"), [*takers, 987654321987, 987654321988])]
    assert sorted(o.item for o in outcomes if o.ok) == sorted(takers)
    assert all(isinstance(o.error, NotFoundError) for o in outcomes if not o.ok) and len(outcomes) == 7


async def test_wrong_key_is_401_not_retried(simulator):
    client = JofiClient(api_key="sk_live_notTheRightKey000", base_url=simulator.base_url, config=ClientConfig(**PATIENT))
    async with client:
        with pytest.raises(AuthenticationError, match="JOFI_LIVE_API_KEY") as info:
            await client.get("account")
    assert info.value.status == 401
    assert statuses(simulator, "/accounts") == {"401": 1}


async def test_latency_is_overlapped_by_concurrency(simulator):
    simulator.set_faults(latency_ms=100)
    async with client_for(simulator, max_concurrency=16) as client:
        pairs = await scorecard_pairs(client, 64)
        started = time.monotonic()
        ok, failed = await fan_out_scorecards(client, pairs)
        elapsed = time.monotonic() - started
    assert len(ok) == 64 and not failed
    # Sequential would take 6.4 s; 16 in flight take ~0.4 s on a quiet machine. Half of sequential
    # still shows the overlap while three other test workers share the two cores.
    assert elapsed < 64 * 0.1 / 2


async def test_server_rate_limit_429s_are_absorbed(simulator):
    simulator.set_faults(rate_limit_per_s=20, rate_limit_burst=5)
    async with client_for(simulator, max_concurrency=8) as client:
        pairs = await scorecard_pairs(client, 60)
        ok, failed = await fan_out_scorecards(client, pairs)
    assert len(ok) == 60 and not failed
    assert statuses(simulator).get("429", 0) > 0  # the limit really bit


async def test_proactive_rate_limit_stays_under_the_server_limit(simulator):
    simulator.set_faults(rate_limit_per_s=20)
    async with client_for(simulator, max_concurrency=8, requests_per_second=18) as client:
        pairs = await scorecard_pairs(client, 40)
        started = time.monotonic()
        ok, failed = await fan_out_scorecards(client, pairs)
        elapsed = time.monotonic() - started
    assert len(ok) == 40 and not failed
    assert statuses(simulator).get("429", 0) == 0
    assert elapsed >= (40 - 2) / 18 * 0.9


async def test_5xx_are_absorbed(simulator):
    simulator.set_faults(error_rate=0.3, seed=3)
    async with client_for(simulator, max_concurrency=8) as client:
        pairs = await scorecard_pairs(client, 80)
        ok, failed = await fan_out_scorecards(client, pairs)
        retries = dict(client.counts.retries_by_reason)
    assert len(ok) == 80 and not failed
    served = statuses(simulator)
    assert sum(n for s, n in served.items() if s.startswith("5")) > 0
    assert any(reason.startswith("status_5") for reason in retries)


@pytest.mark.parametrize("style", ["json", "content_length"])
async def test_malformed_and_truncated_bodies_are_absorbed(simulator, style):
    simulator.set_faults(malformed_rate=0.2, truncated_rate=0.25, truncated_style=style, seed=5)
    async with client_for(simulator, "test", max_concurrency=8) as client:
        account = await client.get("account")
        lists = [await client.list("teams"), await client.list("test_takers"), await client.list("invitations")]
        pairs = await scorecard_pairs(client, 60)
        ok, failed = await fan_out_scorecards(client, pairs)
        retries = dict(client.counts.retries_by_reason)
    assert account["object"] == "account" and all(result.items for result in lists)
    assert len(ok) == 60 and not failed
    assert all(o.value["object"] == "scorecard" for o in ok)
    fired = simulator.faults()["fired"]
    assert fired.get("malformed", 0) > 0 and fired.get("truncated", 0) > 0
    assert retries.get("malformed_body", 0) > 0
    if style == "content_length":
        assert retries.get("connection_error", 0) > 0  # body cut off below its Content-Length


async def test_hung_requests_time_out_and_are_retried(simulator):
    simulator.set_faults(hang_rate=0.2, hang_seconds=5, seed=11)
    async with client_for(simulator, max_concurrency=8, read_timeout=0.5) as client:
        pairs = await scorecard_pairs(client, 40)
        started = time.monotonic()
        ok, failed = await fan_out_scorecards(client, pairs)
        elapsed = time.monotonic() - started
        retries = dict(client.counts.retries_by_reason)
    assert len(ok) == 40 and not failed
    assert retries.get("timeout", 0) > 0 and elapsed < 5


async def test_always_hung_gives_a_clear_timeout_error(simulator):
    simulator.set_faults(hang_rate=1.0, hang_seconds=5)
    config = dict(read_timeout=0.3, max_retries=1)
    async with client_for(simulator, **config) as client:
        started = time.monotonic()
        with pytest.raises(ApiUnreachableError) as info:
            await client.get("account")
        assert time.monotonic() - started < 3
    message = str(info.value)
    assert "timed out" in message and "127.0.0.1" in message and "/accounts" in message


async def test_unreachable_host_healthcheck_names_host(simulator):
    async with JofiClient(api_key=simulator.live_key, base_url="http://127.0.0.1:9/api/v2",
                          config=ClientConfig(**PATIENT, healthcheck_retries=1)) as client:
        with pytest.raises(ApiUnreachableError, match=r"127\.0\.0\.1:9") as info:
            await client.healthcheck()
    assert "JOFI_API_BASE_URL" in str(info.value)


async def test_cursor_pagination_is_followed_when_the_server_honours_it(make_simulator):
    sim = make_simulator(test_takers=70, seed=7, pagination="cursor")
    truth = sim.truth("live")
    async with client_for(sim, page_limit=25) as client:
        takers = await client.list("test_takers")
        profiles = await client.list("career_navigation_profiles")
    assert sorted(t["id"] for t in takers.items) == sorted(t["id"] for t in truth["test_takers"])
    assert not takers.capped and not takers.has_more and takers.pages > 1
    assert len(profiles.items) == profiles.total_count and not profiles.capped


async def test_cursor_ignored_by_default_server_is_reported_capped(simulator):
    async with client_for(simulator) as client:
        takers = await client.list("test_takers")
    assert takers.capped and takers.has_more and takers.pages == 2
    assert len(takers.items) < takers.total_count
    assert simulator.stats()["routes"]["GET /test-takers"]["total"] == 2


async def test_concurrent_clients_for_both_modes_do_not_mix(simulator):
    async with client_for(simulator, "live") as live, client_for(simulator, "test") as test:
        live_account, test_account = await asyncio.gather(live.get("account"), test.get("account"))
    assert (live_account["mode"], test_account["mode"]) == ("live", "test")
    assert live_account["id"] != test_account["id"]
