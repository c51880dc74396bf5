"""The world: deterministic from its seed; advance() moves the lifecycle on; the test world stays put."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from jofi_pipeline.simulator.activity import advance
from jofi_pipeline.simulator.history import build_world

from .conftest import client, get_json


def test_same_seed_same_world_and_answers(make_simulator):
    a, b = make_simulator(seed=11, test_takers=60), make_simulator(seed=11, test_takers=60)
    assert a.live_key == b.live_key and a.test_key == b.test_key
    for mode in ("live", "test"):
        assert a.truth(mode) == b.truth(mode)
    with client(a, "live") as ca, client(b, "live") as cb:
        taker = get_json(ca, "/test-takers")["data"][0]["id"]
        for path in ("/accounts", "/invitations", f"/test-takers/{taker}/scorecard?sp=JOFI-295-AS"):
            assert ca.get(path).content == cb.get(path).content
    assert a.advance(5) == b.advance(5)
    assert a.truth("live") == b.truth("live")


def test_different_seed_different_world():
    a, b = build_world(1, 50), build_world(2, 50)
    assert [i.email for i in a.invitations.values()] != [i.email for i in b.invitations.values()]
    assert list(a.test_takers) != list(b.test_takers)


def _lifecycle(world):
    return (
        [(i.id, i.created_at.at, i.accepted_at and i.accepted_at.at) for i in world.invitations.values()],
        [(t.id, t.completed_ids(), t.career_navigation_profile_id) for t in world.test_takers.values()],
        sorted(world.profiles),
        world.now,
    )


def test_advance_in_steps_equals_advance_at_once():
    a, b, c = build_world(5, 40), build_world(5, 40), build_world(5, 40)
    advance(a, 6 * 24)
    for _ in range(3):
        advance(b, 2 * 24)
    for hours in (1, 2, 3, 5, 7, 13, 24, 17, 72):  # 144 hours in uneven steps across midnights
        advance(c, hours)
    assert _lifecycle(a) == _lifecycle(b) == _lifecycle(c)


def test_hours_spread_the_day_and_never_show_the_future():
    world = build_world(3, 20)
    world.daily_invitations = 70
    created_per_step = []
    for _ in range(12):
        before = world.now
        summary = advance(world, 2)
        assert summary["hours"] == 2 and summary["now"] == world.now.isoformat()
        created = [world.invitations[i].created_at.at for i in summary["invitations_created"]]
        assert all(before <= moment < world.now for moment in created)
        created_per_step.append(len(created))
    assert all(world.invitations[i].created_at.at < world.now for i in world.invitations)
    assert sum(created_per_step) >= 35 and max(created_per_step) < sum(created_per_step) / 2, created_per_step


def test_world_size_and_lifecycle_states():
    world = build_world(42, 200)
    assert len(world.test_takers) == 200
    states = Counter()
    for taker in world.test_takers.values():
        done = len(taker.completed_ids())
        states["none" if done == 0 else "all" if done == len(taker.assignments) else "some"] += 1
    assert all(states[k] > 0 for k in ("none", "some", "all")), states
    assert any(i.accepted_at is None for i in world.invitations.values())
    assert all(i > 2**31 for i in world.invitations) and all(i > 2**31 for i in world.test_takers)
    test_world = build_world(42, 100, "test")
    assert len(test_world.invitations) > 50 and len(test_world.test_takers) > 30 and len(test_world.profiles) > 50
    with pytest.raises(RuntimeError):
        advance(test_world, 1)


def test_advance_moves_the_lifecycle_and_the_windows(make_simulator):
    sim = make_simulator(seed=9, test_takers=120)
    with client(sim, "live") as live, client(sim, "test") as test:
        windows = {p: get_json(live, p) for p in ("/invitations", "/test-takers", "/career-navigation-profiles")}
        test_before = sim.truth("test")
        before = {i["id"]: i for i in sim.truth("live")["invitations"]}
        summary = sim.advance(30)
        assert summary["days"] == 30 and summary["now"].startswith("2026-04-01")
        for kind in ("invitations_created", "invitations_accepted", "test_takers_created", "assessments_completed", "career_navigation_profiles_created"):
            assert summary[kind], f"30 days without {kind}"
        after = {i["id"]: i for i in sim.truth("live")["invitations"]}
        assert set(summary["invitations_created"]) == set(after) - set(before)
        for invitation_id in summary["invitations_accepted"]:
            invitation = get_json(live, f"/invitations/{invitation_id}")
            assert invitation["accepted_at"] and invitation["test_taker_id"] in summary["test_takers_created"]
            taker = get_json(live, f"/test-takers/{invitation['test_taker_id']}")
            assert taker["invitation_id"] == invitation_id and taker["assigned_assessments"]
            assert [a["assessment"]["id"] for a in taker["assigned_assessments"]] == [a["test_id"] for a in invitation["assessments"]]
        for done in summary["assessments_completed"][:20]:
            taker = get_json(live, f"/test-takers/{done['test_taker_id']}")
            assignment = next(a for a in taker["assigned_assessments"] if a["id"] == done["assignment_id"])
            assert assignment["completed_at"] and assignment["completed_at"] >= assignment["started_at"]
            card = get_json(live, f"/test-takers/{done['test_taker_id']}/scorecard", params={"sp": "JOFI-295-AS"})
            section = {6: "personality_traits", 7: "thinking_skills", 8: "career_interests"}.get(done["assessment_id"])
            if section:
                assert card["scores"][section][0]["test_taker_score"] is not None
        for profile_id in summary["career_navigation_profiles_created"]:
            profile = get_json(live, f"/career-navigation-profiles/{profile_id}")
            assert get_json(live, f"/invitations/{profile['invitation_id']}")["career_navigation_profile_id"] == profile_id
            get_json(live, f"/test-takers/{profile['test_taker_id']}/job-fit-report")
        for path, old in windows.items():
            new = get_json(live, path)
            assert new["total_count"] > old["total_count"], path
            old_ids = [item["id"] for item in old["data"]]
            assert old_ids[-1] not in [item["id"] for item in new["data"]], f"{path}: the window did not move on"
            assert new["data"][0]["id"] not in old_ids
        assert sim.truth("test") == test_before
        assert get_json(test, "/test-takers")["total_count"] == len(test_before["test_takers"])


def test_advance_rejects_bad_days_and_hours(simulator):
    url = simulator.root_url + "/_sim/advance"
    for params in ({"days": "-1"}, {"days": "x"}, {"days": "100000"}, {"hours": "1.5"}, {"hours": "99999999"}, {"days": 1, "hours": 1}):
        answer = httpx.post(url, params=params)
        unit = "hours" if "hours" in params else "days"
        assert answer.status_code == 400 and unit in answer.json()["error"]["message"], params
    assert httpx.post(url, json=["hours"]).status_code == 400


def test_advance_by_hours_over_http(simulator):
    start = simulator.info()["now"]
    by_body = httpx.post(simulator.root_url + "/_sim/advance", json={"hours": 5}).json()
    assert by_body["hours"] == 5 and by_body["days"] == 5 / 24
    summary = simulator.advance(hours=19)
    assert summary["hours"] == 19 and summary["days"] == 19 / 24
    assert summary["now"] == simulator.advance(days=0)["now"] and summary["now"] > start
    assert summary["now"][:10] != start[:10] and summary["now"][11:19] == start[11:19], "5 h + 19 h is one day"
