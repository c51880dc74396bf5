"""Auth (8.1), error bodies (8.4), 400 on sp, 404 on unknown ids, mode on every answer."""

from __future__ import annotations

import httpx
import pytest

from . import shapes
from .conftest import client, get_json

ROUTES = [
    "/accounts", "/users", "/teams", "/email-templates", "/assessments", "/score-profiles", "/invitations",
    "/test-takers", "/career-navigation-profiles",
]


@pytest.mark.parametrize("header", ["Authorization", "Authentication"])
def test_both_header_spellings_work(simulator, header):
    for mode in ("live", "test"):
        with client(simulator, mode, header=header) as c:
            assert get_json(c, "/accounts")["mode"] == mode


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    body = response.json()
    shapes.check(body, shapes.ERROR, "error")
    assert body["mode"] is None
    assert body["error"]["type"] == "authentication_error" and body["error"]["message"]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_needs_a_key(simulator, path):
    sim = simulator
    url = sim.base_url + path
    _assert_401(httpx.get(url))
    _assert_401(httpx.get(url, headers={"Authorization": "Bearer sk_live_notthekey"}))
    _assert_401(httpx.get(url, headers={"Authorization": "Bearer " + sim.live_key.replace("sk_live_", "pk_live_")}))
    _assert_401(httpx.get(url, headers={"Authorization": sim.live_key}))  # no Bearer scheme
    _assert_401(httpx.get(url, headers={"Authorization": "Bearer sk_test_" + sim.live_key[8:]}))


def test_401_does_not_echo_the_key(simulator):
    response = httpx.get(simulator.base_url + "/accounts", headers={"Authorization": "Bearer sk_live_secretvalue123"})
    assert "secretvalue123" not in response.text


@pytest.mark.parametrize("path", ROUTES)
def test_mode_on_every_answer(mode_client, path):
    mode, c = mode_client
    assert get_json(c, path)["mode"] == mode


def test_scorecard_sp_is_required_and_checked(simulator, mode_client):
    mode, c = mode_client
    taker = get_json(c, "/test-takers")["data"][0]["id"]
    for params in ({}, {"sp": ""}, {"sp": "JOFI-999-XX"}, {"sp": "295"}):
        body = get_json(c, f"/test-takers/{taker}/scorecard", status=400, params=params)
        shapes.check(body, shapes.ERROR, "error", mode)
        assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "path",
    [
        "/invitations/123", "/invitations/abc", "/invitations/-5", "/invitations/0012",
        "/test-takers/999", "/test-takers/1.5", "/test-takers/999/scorecard?sp=JOFI-295-AS",
        "/test-takers/999/job-fit-report", "/career-navigation-profiles/CNP0000000000",
        "/career-navigation-profiles/nope", "/no-such-route",
    ],
)
def test_unknown_ids_are_404(mode_client, path):
    mode, c = mode_client
    body = get_json(c, path, status=404)
    shapes.check(body, shapes.ERROR, "error", mode)
    assert body["error"]["type"] == "not_found_error"


def test_ids_of_the_other_mode_are_404(simulator, live, test_client):
    live_taker = get_json(live, "/test-takers")["data"][0]["id"]
    test_taker = get_json(test_client, "/test-takers")["data"][0]["id"]
    get_json(test_client, f"/test-takers/{live_taker}", status=404)
    get_json(live, f"/test-takers/{test_taker}", status=404)


def test_wrong_method_is_405_in_error_shape(live):
    response = live.delete("/accounts")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
