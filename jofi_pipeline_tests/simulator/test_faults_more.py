"""The faults added for the reliability suite: resets, HTML answers, the other mode, revoked keys,
deleted records and schema drift — each observable over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from .conftest import get_json


def test_reset_drops_the_connection_without_an_answer(simulator, live):
    simulator.set_faults(reset_rate=1.0, routes=["GET /teams"])
    with pytest.raises(httpx.TransportError):
        live.get("/teams")
    assert live.get("/users").status_code == 200, "other routes and the server itself keep working"
    assert simulator.stats()["faults_fired"]["reset"] == 1


def test_wrong_content_type_is_a_200_html_page(simulator, live):
    simulator.set_faults(wrong_content_type_rate=1.0)
    answer = live.get("/teams")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("force", "claimed"), [("other", "test"), ("test", "test"), ("live", "live")])
def test_force_mode_rewrites_the_mode_of_every_body(simulator, live, force, claimed):
    simulator.set_faults(force_mode=force)
    assert get_json(live, "/teams")["mode"] == claimed
    assert get_json(live, "/accounts")["mode"] == claimed
    simulator.clear_faults()
    assert get_json(live, "/teams")["mode"] == "live"


def test_revoke_after_requests_answers_401_from_then_on(simulator, live):
    simulator.set_faults(revoke_after_requests=3)
    statuses = [live.get("/teams").status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 401, 401, 401]
    body = live.get("/users").json()
    assert body["error"]["type"] == "authentication_error"
    simulator.set_faults(revoke_after_requests=0)
    assert live.get("/teams").status_code == 200, "clearing the setting restores the key"


def test_not_found_ids_404_by_id_and_vanish_from_lists(simulator, live):
    before = get_json(live, "/test-takers")
    gone = before["data"][0]["id"]
    simulator.set_faults(not_found_ids=[gone])
    answer = live.get(f"/test-takers/{gone}")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "not_found_error"
    assert live.get(f"/test-takers/{gone}/scorecard", params={"sp": "JOFI-295-AS"}).status_code == 404
    after = get_json(live, "/test-takers")
    assert gone not in {item["id"] for item in after["data"]}
    assert after["total_count"] == before["total_count"] - 1
    other = before["data"][1]["id"]
    assert live.get(f"/test-takers/{other}").status_code == 200


def test_drift_removes_adds_and_retypes_fields_in_objects_and_list_items(simulator, live):
    taker = get_json(live, "/test-takers")["data"][0]
    assert isinstance(taker["email"], str) and "first_name" in taker
    simulator.set_faults(drift_remove=["first_name"], drift_add=["loyalty_tier"], drift_retype=["email", "id"])
    items = get_json(live, "/test-takers")["data"]
    one = get_json(live, f"/test-takers/{taker['id']}")
    for obj in (items[0], one):
        assert "first_name" not in obj
        assert obj["loyalty_tier"] == "drift"
        assert obj["email"] == len(taker["email"]), "text became a number"
        assert obj["id"] == str(taker["id"]), "a number became text"
        assert obj["mode"] == "live" if obj is one else True
    error = live.get("/test-takers/999999999")
    assert error.json()["object"] == "error" and "loyalty_tier" not in error.json(), "error bodies keep their shape"


def test_new_settings_are_validated(simulator):
    for bad in ({"force_mode": "staging"}, {"reset_rate": 2}, {"revoke_after_requests": -1}, {"not_found_ids": ["x"]}):
        assert httpx.post(simulator.root_url + "/_sim/faults", json=bad).status_code == 400, bad


CONTRACT_DEFAULTS = {
    "latency_ms": 0.0, "latency_jitter_ms": 0.0, "rate_limit_per_s": 0.0, "rate_limit_burst": 0, "error_rate": 0.0,
    "error_statuses": [500, 502, 503], "malformed_rate": 0.0, "truncated_rate": 0.0, "truncated_style": "mixed",
    "hang_rate": 0.0, "hang_seconds": 30.0, "reset_rate": 0.0, "wrong_content_type_rate": 0.0, "force_mode": "",
    "revoke_after_requests": 0, "not_found_ids": [], "drift_remove": [], "drift_add": [], "drift_retype": [],
    "routes": [], "modes": [], "include_healthcheck": False, "seed": None,
}


def test_fault_settings_contract_is_every_knob_with_its_default(simulator):
    assert simulator.faults() == {"settings": CONTRACT_DEFAULTS, "active": False, "fired": {}}


def test_each_trigger_and_only_a_trigger_switches_faults_on():
    """TRIGGERS and validation come from the rules' knobs: every knob is owned once and behaves as declared."""
    from jofi_pipeline.simulator.faults import KNOBS, RULES, SCOPE, TRIGGERS, FaultInjector

    owners = [knob.name for rule in RULES for knob in rule.knobs] + [knob.name for knob in SCOPE]
    assert sorted(owners) == sorted(CONTRACT_DEFAULTS), "each setting belongs to exactly one rule (or the scope)"
    samples = {float: 0.5, int: 2, str: "other", bool: True}
    for knob in KNOBS:
        value = samples.get(knob.type, [501] if str(knob.type) == "list[int]" else ["x"])
        value = {"truncated_style": "json", "seed": 7}.get(knob.name, value)
        injector = FaultInjector()
        injector.merge({knob.name: value})
        assert injector.describe()["active"] is (knob.name in TRIGGERS), knob.name
        assert injector.describe()["settings"][knob.name] == value
