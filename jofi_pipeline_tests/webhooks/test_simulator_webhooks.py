"""The simulator's deliveries: documented types, section 4.4 envelope, 8.8 signature, retries, live only."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jofi_pipeline.harness.threaded_server import ThreadedServer
from jofi_pipeline_tests.webhooks.helpers import SECRET

TYPES = {
    "invitation.created": "invitation",
    "invitation.accepted": "invitation",
    "test_taker.created": "test_taker",
    "test_taker.assessment_completed": "test_taker",
    "career_navigation_profile.created": "career_navigation_profile",
}


class Recorder(ThreadedServer):
    """A bare endpoint that records what arrives; answers `fail_first` requests with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        self.calls = 0

        async def hook(request: Request) -> JSONResponse:
            self.calls += 1
            if self.calls <= self.fail_first:
                return JSONResponse({"error": "down"}, 503)
            self.received.append((dict(request.headers), await request.body()))
            return JSONResponse({"ok": True})

        super().__init__(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.url = f"{self.root_url}/hook"


def create_invitation(sim, key: str) -> httpx.Response:
    user = httpx.get(sim.base_url + "/users", headers={"Authorization": f"Bearer {key}"}).json()["data"][0]
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "created_by_user_email": user["email"]}
    return httpx.post(sim.base_url + "/invitations", json=body, headers={"Authorization": f"Bearer {key}"})


def test_live_activity_is_delivered_as_signed_documented_events(make_simulator):
    sim = make_simulator(test_takers=10, seed=5, daily_invitations=20)
    with Recorder() as hook:
        settings = sim.set_webhooks(url=hook.url, secret=SECRET)
        assert SECRET not in json.dumps(settings) and settings["secret_set"] is True
        summary = sim.advance(2)
        created = create_invitation(sim, sim.live_key)
        assert created.status_code == 201
        assert sim.flush_webhooks()["flushed"]

    events = []
    for headers, body in hook.received:
        t, v1 = (part.split("=", 1)[1] for part in headers["jofi-signature"].split(","))
        expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, expected) and abs(time.time() - int(t)) < 60
        events.append(json.loads(body))
    assert {e["type"] for e in events} == set(TYPES)
    for event in events:
        assert event["id"].startswith("evt_") and event["object"] == "event" and event["api_version"] == "2.3.0"
        assert event["created_at"].endswith("Z")
        assert event["data"]["object"]["object"] == TYPES[event["type"]]
    assert len({e["id"] for e in events}) == len(events)
    by_type = lambda t: {e["data"]["object"]["id"] for e in events if e["type"] == t}  # noqa: E731
    assert by_type("invitation.created") == set(summary["invitations_created"]) | {created.json()["id"]}
    assert by_type("test_taker.created") == set(summary["test_takers_created"])
    assert by_type("career_navigation_profile.created") == set(summary["career_navigation_profiles_created"])


def test_test_mode_activity_sends_nothing(make_simulator):
    sim = make_simulator(test_takers=5, seed=5)
    with Recorder() as hook:
        sim.set_webhooks(url=hook.url, secret=SECRET)
        assert create_invitation(sim, sim.test_key).status_code == 201
        assert sim.flush_webhooks()["flushed"]
    assert hook.received == [] and sim.webhooks()["stats"]["emitted"] == 0


def test_failed_deliveries_are_retried_then_given_up_after_a_bound(make_simulator):
    sim = make_simulator(test_takers=5, seed=5)
    with Recorder(fail_first=2) as flaky:
        sim.set_webhooks(url=flaky.url, secret=SECRET, max_attempts=3)
        create_invitation(sim, sim.live_key)
        assert sim.flush_webhooks()["flushed"]
    stats = sim.webhooks()["stats"]
    assert len(flaky.received) == 1 and stats["delivered"] == 1
    assert stats["failed_attempts"] == 2 and stats["failures_by_status"] == {"503": 2}

    with Recorder(fail_first=10**6) as down:
        sim.set_webhooks(url=down.url, max_attempts=3)
        create_invitation(sim, sim.live_key)
        assert sim.flush_webhooks()["flushed"]
    assert down.calls == 3 and sim.webhooks()["stats"]["gave_up"] == 1


def test_without_an_endpoint_events_are_counted_not_sent(make_simulator):
    sim = make_simulator(test_takers=5, seed=5)
    sim.advance(1)
    stats = sim.webhooks()["stats"]
    assert stats["emitted"] > 0 and stats["not_sent_disabled"] == stats["emitted"] and stats["attempts"] == 0
