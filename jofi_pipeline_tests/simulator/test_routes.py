"""Every route, both modes: documented fields, types, nullability, object strings, ids, timestamps."""

from __future__ import annotations

import re

import httpx
import pytest

from . import shapes
from .conftest import get_json

CNP_ID = re.compile(r"^CNP\d{10}$")


def _list(c: httpx.Client, path: str, mode: str, item_schema: dict, item_object: str) -> dict:
    body = get_json(c, path)
    shapes.check(body, shapes.LIST, "list", mode)
    assert body["data"], f"{path} answered an empty list"
    for item in body["data"]:
        shapes.check(item, item_schema, item_object)
        assert "mode" not in item
    return body


def test_healthcheck_needs_no_key(simulator):
    for url in (simulator.base_url + "/healthcheck", simulator.root_url + "/healthcheck"):
        response = httpx.get(url)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_account(mode_client):
    mode, c = mode_client
    body = get_json(c, "/accounts")
    shapes.check(body, shapes.ACCOUNT, "account", mode)
    assert body["teams_count"] == len(get_json(c, "/teams")["data"])
    assert body["users_count"] == len(get_json(c, "/users")["data"])
    assert body["invitations_count"] == get_json(c, "/invitations")["total_count"]
    assert body["test_takers_seats_used_count"] == get_json(c, "/test-takers")["total_count"]


def test_users_teams_templates(mode_client):
    mode, c = mode_client
    users = _list(c, "/users", mode, shapes.USER, "user_list_item")["data"]
    teams = _list(c, "/teams", mode, shapes.TEAM, "team_list_item")
    templates = _list(c, "/email-templates", mode, shapes.EMAIL_TEMPLATE, "email_template_list_item")["data"]
    team_ids = {t["id"] for t in teams["data"]}
    assert 3 <= len(team_ids) <= 5 and teams["total_count"] == len(team_ids) and not teams["has_more"]
    assert any(t >= 10**9 for t in team_ids), "one team id should be 10-digit like the docs' examples"
    for user in users:
        assert "@" in user["email"]
        if user["default_team"] is not None:
            assert user["default_team"]["id"] in team_ids
        for assessment in user["default_assessments"]:
            assert set(assessment) == {"id", "short_name", "display_name"}
    assert any(u["default_team"] is None for u in users) or len(users) < 4
    types = {t["type"] for t in templates}
    assert types == {"invitation", "congrats"}
    assert any(t["team_ids"] == [] for t in templates), "system templates have team_ids []"
    assert any(t["team_ids"] for t in templates), "account templates are assigned to teams"
    for template in templates:
        assert set(template["team_ids"]) <= team_ids
    template_ids = {t["id"] for t in templates if t["type"] == "invitation"}
    assert all(u["default_email_template_id"] in template_ids | {None} for u in users)


def test_assessments_are_the_real_catalog_in_both_modes(live, test_client):
    live_body = get_json(live, "/assessments")
    test_body = get_json(test_client, "/assessments")
    assert live_body["mode"] == "live" and test_body["mode"] == "test"
    assert live_body["data"] == test_body["data"]
    catalog = {a["id"]: (a["short_name"], a["display_name"]) for a in live_body["data"]}
    assert catalog == {
        5: ("Prescreen", "JOFI Prescreen"),
        6: ("Personality", "JOFI Personality Traits"),
        7: ("Thinking", "JOFI Thinking Skills"),
        8: ("Interests", "JOFI Career Interests"),
    }
    for item in live_body["data"]:
        shapes.check(item, shapes.ASSESSMENT, "assessment_list_item")


def test_other_lists_differ_between_modes(live, test_client):
    for path in ("/accounts", "/users", "/teams", "/invitations", "/test-takers", "/career-navigation-profiles"):
        a, b = get_json(live, path), get_json(test_client, path)
        a.pop("mode"), b.pop("mode")
        assert a != b, f"{path}: test mode must answer fake data, not the live records"


def test_score_profiles(mode_client):
    mode, c = mode_client
    body = _list(c, "/score-profiles", mode, shapes.SCORE_PROFILE, "score_profile_list_item")
    assert {(p["id"], p["short_name"]) for p in body["data"]} == {
        (201, "JOFI-112-CE"), (202, "JOFI-113-CE"), (295, "JOFI-295-AS"), (296, "JOFI-534-CR")
    }


def test_invitations_list_and_by_id(mode_client):
    mode, c = mode_client
    body = _list(c, "/invitations", mode, shapes.INVITATION, "invitation_list_item")
    for item in body["data"]:
        assert shapes.big_id(item["id"])
        assert item["assessment_url"].startswith("https://www.jofiscore.com/welcome/")
        assert item["assessments"] and all(set(a) == {"test_id"} for a in item["assessments"])
        one = get_json(c, f"/invitations/{item['id']}")
        shapes.check(one, {**shapes.INVITATION, "mode": (str,)}, "invitation", mode)
        one.pop("mode"), one.pop("object"), item.pop("object")
        assert one == item
    states = {(i["accepted_at"] is None, i["test_taker_id"] is None, i["career_navigation_profile_id"] is None) for i in body["data"]}
    assert (True, True, True) in states, "some invitations are not accepted"
    for accepted_at_null, taker_null, profile_null in states:
        assert accepted_at_null == taker_null, "accepted exactly when it has a test taker"
        assert taker_null <= profile_null, "a career profile only after acceptance"


def test_test_takers_list_and_by_id(mode_client):
    mode, c = mode_client
    body = _list(c, "/test-takers", mode, shapes.TEST_TAKER_ITEM, "test_taker_list_item")
    for item in body["data"]:
        assert shapes.big_id(item["id"]) and shapes.big_id(item["invitation_id"])
        profile = item["career_navigation_profile_id"]
        for url in ("career_navigation_url", "job_fit_summary_url", "career_options_spotlight_url"):
            assert (item[url] is None) == (profile is None), url
        if profile:
            assert CNP_ID.match(profile)
            assert item["career_navigation_url"] == f"https://www.careernavigation.org?c={profile}"
            assert item["job_fit_summary_url"].endswith(f"/test-takers/{profile}/job-fit?r=jfs&zones=1_5")
        assert item["scorecard_url"] == f"https://www.jofiscore.com/team/{item['team']['id']}/test-takers/{item['id']}/scorecard"
        one = get_json(c, f"/test-takers/{item['id']}")
        shapes.check(one, {**shapes.TEST_TAKER, "mode": (str,)}, "test_taker", mode)
        assert one["assigned_assessments"], "every test taker has assignments"
        for assignment in one["assigned_assessments"]:
            shapes.check(assignment, shapes.ASSIGNMENT)
            assert shapes.big_id(assignment["id"])
            assert assignment["assessment"]["id"] in (5, 6, 7, 8)
            if assignment["completed_at"]:
                assert assignment["started_at"] and assignment["started_at"] <= assignment["completed_at"]
        invitation = get_json(c, f"/invitations/{item['invitation_id']}")
        assert invitation["test_taker_id"] == item["id"]
        assert invitation["career_navigation_profile_id"] == profile


def test_career_navigation_profiles(mode_client):
    mode, c = mode_client
    body = _list(c, "/career-navigation-profiles", mode, shapes.PROFILE, "career_navigation_profile_list_item")
    for item in body["data"][:10]:
        assert CNP_ID.match(item["id"])
        one = get_json(c, f"/career-navigation-profiles/{item['id']}")
        shapes.check(one, {**shapes.PROFILE, "mode": (str,)}, "career_navigation_profile", mode)
        taker = get_json(c, f"/test-takers/{item['test_taker_id']}")
        assert taker["career_navigation_profile_id"] == item["id"]
        interests = [a for a in taker["assigned_assessments"] if a["assessment"]["id"] == 8]
        assert interests and interests[0]["completed_at"], "a profile exists only after Career Interests is completed"


def _scorecard_cases(simulator, mode: str) -> list[dict]:
    """Test takers with no, some and all assessments completed (from the truth)."""
    takers = simulator.truth(mode)["test_takers"]
    picked = {}
    for t in takers:
        done = sum(1 for a in t["assigned_assessments"] if a["completed_at"])
        kind = "none" if done == 0 else "all" if done == len(t["assigned_assessments"]) else "some"
        picked.setdefault(kind, t)
    assert set(picked) == {"none", "some", "all"}, f"the world lacks a lifecycle state: {set(picked)}"
    return list(picked.values())


@pytest.mark.parametrize("sp", ["JOFI-295-AS", "JOFI-112-CE"])
def test_scorecards_follow_completions(simulator, mode_client, sp):
    mode, c = mode_client
    sections = {"thinking_skills": 7, "personality_traits": 6, "career_interests": 8}
    for taker in _scorecard_cases(simulator, mode):
        card = get_json(c, f"/test-takers/{taker['id']}/scorecard", params={"sp": sp})
        shapes.check(card, shapes.SCORECARD, "scorecard", mode)
        assert card["score_profile"]["short_name"] == sp
        assert set(card["score_profile"]) == {"id", "display_name", "short_name", "riasec_profile"}
        assert card["test_taker_id"] == taker["id"] and card["invitation_id"] == taker["invitation_id"]
        assert set(card["scores"]) == set(sections)
        assigned = {a["assessment"]["id"]: a for a in taker["assigned_assessments"]}
        for section, assessment_id in sections.items():
            scores = card["scores"][section]
            if assessment_id not in assigned:
                assert scores is None
                continue
            completed = assigned[assessment_id]["completed_at"] is not None
            assert scores, section
            for score in scores:
                shapes.check({k: v for k, v in score.items() if k != "facets"}, shapes.SCORE, "score")
                for item in [score, *score["facets"]]:
                    value = item["test_taker_score"]
                    if completed:
                        assert isinstance(value, float) and 0 <= value <= 10 and round(value, 1) == value
                    else:
                        assert value is None
                for facet in score["facets"]:
                    shapes.check(facet, shapes.SCORE, "score")
        interests_done = 8 in assigned and assigned[8]["completed_at"] is not None
        assert (card["riasec_profile"] is not None) == interests_done
        if card["scores"]["thinking_skills"] is not None:
            overall = card["scores"]["thinking_skills"][0]
            assert overall["short_name"] == "think" and overall["facets"], "Thinking Skills Overall has facets"


def test_job_fit_report(simulator, mode_client):
    mode, c = mode_client
    takers = simulator.truth(mode)["test_takers"]
    with_profile = next(t for t in takers if t["career_navigation_profile_id"])
    without = next(t for t in takers if not t["career_navigation_profile_id"])
    report = get_json(c, f"/test-takers/{with_profile['id']}/job-fit-report")
    shapes.check(report, shapes.JOB_FIT, "job_fit_report", mode)
    assert report["career_navigation_profile_id"] == with_profile["career_navigation_profile_id"]
    assert [z["zone"] for z in report["zones"]] == [1, 2, 3, 4, 5]
    for zone in report["zones"]:
        fits = [o["fit_score"] for o in zone["occupations"]]
        assert fits == sorted(fits, reverse=True) and zone["occupations"]
        assert all(set(o) == {"onet_code", "title", "fit_score"} for o in zone["occupations"])
    error = get_json(c, f"/test-takers/{without['id']}/job-fit-report", status=404)
    assert error["error"]["type"] == "not_found_error" and error["mode"] == mode


def test_timestamps_vary_in_precision(simulator):
    texts = []
    for taker in simulator.truth("live")["test_takers"]:
        texts.append(taker["invitation_created_at"])
        texts += [a["started_at"] for a in taker["assigned_assessments"] if a["started_at"]]
    digits = {len(t.split(".")[1].split("+")[0]) for t in texts}
    assert digits == {3, 5, 6}
