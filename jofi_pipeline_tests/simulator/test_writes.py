"""POST and PUT /invitations: live writes create and change records; test writes change nothing."""

from __future__ import annotations

import pytest

from . import shapes
from .conftest import client, get_json

INVITATION = {**shapes.INVITATION, "mode": (str,)}


@pytest.fixture
def small(make_simulator):
    return make_simulator(test_takers=40, seed=3)


def _body(sim, mode: str = "live", **extra) -> dict:
    inviter = sim.truth(mode)["users"][0]["email"]
    return {"first_name": "Linda", "last_name": "Sample", "email": "linda.sample@example.com", "created_by_user_email": inviter, **extra}


def test_live_post_creates_an_invitation(small):
    with client(small, "live") as c:
        before = get_json(c, "/invitations")["total_count"]
        response = c.post("/invitations", json=_body(small, person_id="1bb2141c-4100-4b21-9cd2-a998b76cf736", custom_id="ABC123"))
        assert response.status_code == 201
        created = response.json()
        shapes.check(created, INVITATION, "invitation", "live")
        assert shapes.big_id(created["id"])
        assert created["accepted_at"] is None and created["test_taker_id"] is None and created["career_navigation_profile_id"] is None
        assert created["custom_id"] == "ABC123" and created["person_id"].startswith("1bb2141c")
        inviter = small.truth("live")["users"][0]
        assert [a["test_id"] for a in created["assessments"]] == [a["id"] for a in inviter["default_assessments"]]
        if inviter["default_team"]:
            assert created["team"] == inviter["default_team"]
        assert get_json(c, f"/invitations/{created['id']}") == created
        listed = get_json(c, "/invitations")
        assert listed["total_count"] == before + 1 and listed["data"][0]["id"] == created["id"]
        assert get_json(c, "/accounts")["invitations_count"] == before + 1


def test_live_post_overrides(small):
    truth = small.truth("live")
    team = truth["teams"][-1]
    with client(small, "live") as c:
        body = _body(small, team_id=team["id"], assessments_to_assign=[{"test_id": 7}, {"test_id": 8}], phone="5551234567", send_via_sms=True)
        created = c.post("/invitations", json=body).json()
        assert created["team"] == {"id": team["id"], "display_name": team["display_name"]}
        assert created["assessments"] == [{"test_id": 7}, {"test_id": 8}]
        assert created["send_via_sms"] is True and created["phone"] == "5551234567"


@pytest.mark.parametrize(
    "change",
    [
        {"first_name": None}, {"last_name": ""}, {"email": None}, {"email": "not-an-email"},
        {"created_by_user_email": None}, {"created_by_user_email": "stranger@elsewhere.example"},
        {"team_id": 1}, {"team_id": "x"}, {"assessments_to_assign": [{"test_id": 99}]}, {"assessments_to_assign": []},
        {"email_template_id": 1}, {"send_via_sms": True}, {"send_via_email": "yes"},
    ],
)
@pytest.mark.parametrize("mode", ["live", "test"])
def test_invalid_post_is_400_and_creates_nothing(simulator, mode, change):
    body = {**_body(simulator, mode), **change}
    body = {k: v for k, v in body.items() if v is not None}
    with client(simulator, mode) as c:
        before = get_json(c, "/invitations")["total_count"]
        response = c.post("/invitations", json=body)
        assert response.status_code == 400, response.text
        error = response.json()
        shapes.check(error, shapes.ERROR, "error", mode)
        assert error["error"]["type"] == "invalid_request_error"
        assert get_json(c, "/invitations")["total_count"] == before


def test_post_body_must_be_a_json_object(live):
    for content in (b"not json", b"[1, 2]"):
        response = live.post("/invitations", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400


def test_test_mode_post_answers_a_fake_and_stores_nothing(simulator, test_client):
    before = simulator.truth("test")
    for inviter_mode in ("test", "live"):  # the account's real inviters are accepted too
        response = test_client.post("/invitations", json=_body(simulator, inviter_mode))
        assert response.status_code == 201
        fake = response.json()
        shapes.check(fake, INVITATION, "invitation", "test")
        get_json(test_client, f"/invitations/{fake['id']}", status=404)
    assert simulator.truth("test") == before


def test_live_put_updates_and_test_put_does_not(small):
    with client(small, "live") as live, client(small, "test") as test:
        target = get_json(live, "/invitations")["data"][0]["id"]
        response = live.put(f"/invitations/{target}", json={"custom_id": "REQ-NEW", "phone": "5550001111"})
        assert response.status_code == 200
        updated = response.json()
        shapes.check(updated, INVITATION, "invitation", "live")
        assert updated["custom_id"] == "REQ-NEW" and updated["phone"] == "5550001111"
        assert get_json(live, f"/invitations/{target}") == updated

        fake_target = get_json(test, "/invitations")["data"][0]
        response = test.put(f"/invitations/{fake_target['id']}", json={"custom_id": "REQ-FAKE"})
        assert response.status_code == 200 and response.json()["custom_id"] == "REQ-FAKE" and response.json()["mode"] == "test"
        assert get_json(test, f"/invitations/{fake_target['id']}")["custom_id"] == fake_target["custom_id"]

        assert live.put("/invitations/123", json={"custom_id": "x"}).status_code == 404
        for bad in ({}, {"unknown_field": 1}, {"team_id": 1}, {"first_name": ""}, {"send_via_email": None}):
            assert live.put(f"/invitations/{target}", json=bad).status_code == 400, bad
