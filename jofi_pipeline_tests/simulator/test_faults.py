"""Injected faults: latency, 429 with headers, 5xx, malformed, truncated, hangs; scoping and seeds."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from . import shapes
from .conftest import client, get_json


def test_latency(simulator, live):
    started = time.perf_counter()
    live.get("/teams")
    fast = time.perf_counter() - started
    simulator.set_faults(latency_ms=300, latency_jitter_ms=50)
    started = time.perf_counter()
    assert live.get("/teams").status_code == 200
    slow = time.perf_counter() - started
    assert 0.3 <= slow < 1.5 and fast < 0.3
    started = time.perf_counter()
    simulator.stats()  # /_sim/ is never slowed down
    assert time.perf_counter() - started < 0.3


def test_rate_limit_answers_429_with_headers(simulator, live, test_client):
    simulator.set_faults(rate_limit_per_s=1, rate_limit_burst=3)
    answers = [live.get("/teams") for _ in range(6)]
    statuses = [r.status_code for r in answers]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    ok = answers[0]
    assert ok.headers["RateLimit-Limit"] == "3" and ok.headers["RateLimit-Remaining"] == "2"
    limited = next(r for r in answers if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "3" and limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) >= 1
    body = limited.json()
    shapes.check(body, shapes.ERROR, "error", "live")
    assert body["error"]["type"] == "rate_limit_error"
    assert test_client.get("/teams").status_code == 200, "buckets are per key"
    assert httpx.get(simulator.base_url + "/healthcheck").status_code == 200
    time.sleep(int(limited.headers["Retry-After"]))
    assert live.get("/teams").status_code == 200, "honouring Retry-After is enough"


def test_error_rate(simulator, live):
    simulator.set_faults(error_rate=0.5, seed=1)
    answers = [live.get("/users") for _ in range(200)]
    errors = [r for r in answers if r.status_code >= 500]
    assert 60 <= len(errors) <= 140
    assert {r.status_code for r in errors} <= {500, 502, 503} and len({r.status_code for r in errors}) > 1
    for r in errors[:5]:
        shapes.check(r.json(), shapes.ERROR, "error", "live")
        assert r.json()["error"]["type"] == "api_error"
    assert all(r.json()["object"] == "list" for r in answers if r.status_code == 200)
    assert simulator.stats()["faults_fired"]["error"] == len(errors)


def test_fault_seed_makes_faults_repeatable(simulator, live):
    runs = []
    for _ in range(2):
        simulator.set_faults(error_rate=0.3, seed=123)
        runs.append([live.get("/teams").status_code for _ in range(40)])
    assert runs[0] == runs[1] and set(runs[0]) != {200}


def test_routes_filter_and_scope(simulator, live):
    simulator.set_faults(error_rate=1.0, routes=["/test-takers/{id}/scorecard", "GET /teams"])
    assert live.get("/teams").status_code >= 500
    taker = get_json(live, "/test-takers")["data"][0]["id"]
    assert live.get(f"/test-takers/{taker}/scorecard", params={"sp": "JOFI-295-AS"}).status_code >= 500
    assert live.get(f"/test-takers/{taker}").status_code == 200
    simulator.set_faults(routes=[])
    assert httpx.get(simulator.base_url + "/healthcheck").status_code == 200
    assert httpx.get(simulator.root_url + "/_sim/stats").status_code == 200
    simulator.set_faults(include_healthcheck=True)
    assert httpx.get(simulator.base_url + "/healthcheck").status_code >= 500


def test_malformed_body(simulator, live):
    simulator.set_faults(malformed_rate=1.0)
    response = live.get("/accounts")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_truncated_by_content_length(simulator, live):
    simulator.set_faults(truncated_rate=1.0, truncated_style="content_length")
    with pytest.raises(httpx.RemoteProtocolError):
        live.get("/test-takers")
    simulator.clear_faults()
    assert live.get("/test-takers").status_code == 200, "the server survives dropped connections"


def test_truncated_json(simulator, live):
    full = live.get("/test-takers").content
    simulator.set_faults(truncated_rate=1.0, truncated_style="json")
    response = live.get("/test-takers")
    assert response.status_code == 200 and 0 < len(response.content) < len(full)
    assert int(response.headers["content-length"]) == len(response.content)
    assert full.startswith(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_hang(simulator):
    simulator.set_faults(hang_rate=1.0, hang_seconds=3)
    with client(simulator, "live", timeout=0.5) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.get("/accounts")
        assert time.perf_counter() - started < 2
    assert httpx.get(simulator.base_url + "/healthcheck", timeout=1).status_code == 200


def test_a_hung_request_ends_when_its_client_leaves(simulator):
    """A hung request whose client gave up is let go at once, unanswered: counted as abandoned,
    not as answered (uvicorn alone would answer it hang_seconds later, into another test's stats)."""
    simulator.set_faults(hang_rate=1.0, hang_seconds=120, routes=["/users"], modes=["live"])
    with client(simulator, "live", timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get("/users")
    deadline = time.monotonic() + 15  # generous for a loaded machine; the fix takes milliseconds
    while (stats := simulator.stats())["abandoned"]["total"] == 0:
        assert time.monotonic() < deadline, f"the simulator still holds the hung request: {stats}"
        time.sleep(0.05)
    assert stats["abandoned"] == {"total": 1, "routes": {"GET /users": 1}, "by_mode": {"live": 1}}
    assert "GET /users" not in stats["routes"], "an abandoned request must not count as answered"
    assert stats["faults_fired"] == {"hang": 1}  # the hang did fire
    simulator.clear_faults()
    with client(simulator, "live") as c:
        get_json(c, "/users")
    answered = simulator.stats()
    assert answered["routes"]["GET /users"]["by_status"] == {"200": 1} and answered["abandoned"]["total"] == 1


def test_a_hung_request_still_gets_its_body(simulator, test_client):
    """A hang reads the request while it waits (to see the client leave): the route must still get
    the whole body, here a POST sent in several chunks during the hang."""
    simulator.set_faults(hang_rate=1.0, hang_seconds=0.3, routes=["/invitations"])
    inviter = simulator.truth("test")["users"][0]["email"]
    body = json.dumps({"first_name": "Linda", "last_name": "Sample", "email": "linda.sample@example.com",
                       "created_by_user_email": inviter, "custom_id": "x" * 200}).encode()

    def chunks():
        for i in range(0, len(body), 64):
            yield body[i : i + 64]
            time.sleep(0.01)

    response = test_client.post("/invitations", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["custom_id"] == "x" * 200
    stats = simulator.stats()
    assert stats["faults_fired"] == {"hang": 1} and stats["abandoned"]["total"] == 0


def test_fault_settings_are_validated_and_merged(simulator):
    url = simulator.root_url + "/_sim/faults"
    assert httpx.post(url, json={"no_such_fault": 1}).status_code == 400
    assert httpx.post(url, json={"error_rate": 2}).status_code == 400
    assert httpx.post(url, json={"latency_ms": "slow"}).status_code == 400
    simulator.set_faults(latency_ms=5)
    merged = simulator.set_faults(error_rate=0.1)["settings"]
    assert merged["latency_ms"] == 5 and merged["error_rate"] == 0.1
    cleared = simulator.clear_faults()
    assert cleared["settings"]["latency_ms"] == 0 and cleared["active"] is False


def test_faults_from_start_options(make_simulator):
    sim = make_simulator(test_takers=35, error_rate=1.0, fault_routes="/accounts", rate_limit=1000)
    assert sim.faults()["settings"]["error_rate"] == 1.0
    with client(sim, "live") as c:
        failed = c.get("/accounts")
        assert failed.status_code >= 500 and failed.headers["RateLimit-Limit"] == "1000"
        ok = c.get("/teams")
        assert ok.status_code == 200 and "RateLimit-Limit" not in ok.headers, "fault_routes scopes every fault"
