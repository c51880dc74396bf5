"""Objects shaped like jofi-api.md (sections 2, 4.4 and 8.7), for warehouse tests.

Builders return fresh dicts so a test can tweak one without touching another.
"""

from __future__ import annotations

import copy
from typing import Any

BIG_TEST_TAKER_ID = 2345623456      # > 2^31, from the docs' examples
BIG_INVITATION_ID = 1234612346


def account(**over: Any) -> dict[str, Any]:
    return {
        "mode": "live", "object": "account", "id": 68, "display_name": "CoffeeBean Inc",
        "display_name_external": "The Coffee Company", "teams_count": 3, "users_count": 3,
        "invitations_count": 162, "test_takers_seats_used_count": 98, "prescreens_completed_count": 16,
        "thinking_skills_completed_count": 21, "personality_completed_count": 55,
        "career_interests_completed_count": 47, "webhook_endpoint": "https://www.example.com/webhooks/jofi",
        "webhooks_enabled": True, **over,
    }


def team(id: int = 328, display_name: str = "Recruiting", **over: Any) -> dict[str, Any]:
    return {"object": "team_list_item", "id": id, "display_name": display_name, "users_count": 5,
            "invitations_count": 144, "test_takers_count": 92, **over}


def email_template(**over: Any) -> dict[str, Any]:
    return {"object": "email_template_list_item", "id": 1000, "display_name": "CoffeeBean Invitation",
            "type": "invitation", "team_ids": [178, 328], **over}


def user(**over: Any) -> dict[str, Any]:
    return {
        "object": "user_list_item", "id": 501, "email": "boss@coffeebean.example", "first_name": "Ann",
        "last_name": "Boss", "default_team": {"id": 328, "display_name": "Recruiting"},
        "default_assessments": [assessment_ref(6), assessment_ref(7)], "default_email_template_id": 1000, **over,
    }


ASSESSMENT_NAMES = {5: ("Prescreen", "JOFI Prescreen"), 6: ("Personality", "JOFI Personality Traits"),
                    7: ("Thinking", "JOFI Thinking Skills"), 8: ("Interests", "JOFI Career Interests")}


def assessment_ref(id: int) -> dict[str, Any]:
    short, display = ASSESSMENT_NAMES[id]
    return {"id": id, "short_name": short, "display_name": display}


def assessment(id: int = 6) -> dict[str, Any]:
    return {"object": "assessment_list_item", **assessment_ref(id)}


def score_profile(id: int = 295, short_name: str = "JOFI-295-AS", display_name: str = "Healthcare Practitioners and Technical Zone 5") -> dict[str, Any]:
    return {"object": "score_profile_list_item", "id": id, "short_name": short_name, "display_name": display_name}


def invitation(id: int = 12345, **over: Any) -> dict[str, Any]:
    return {
        "mode": "live", "object": "invitation", "id": id, "first_name": "Linda", "last_name": "Sample",
        "email": "linda.sample@jofiscore.com", "person_id": "1bb2141c-4100-4b21-9cd2-a998b76cf736",
        "assessment_url": "https://www.jofiscore.com/welcome/69608c33-1425-4123-9c49-22c5d9d7838c",
        "accepted_at": None, "test_taker_id": None, "career_navigation_profile_id": None,
        "created_at": "2026-02-03T12:41:35.034681+00:00", "custom_id": "ABC123", "phone": "5551234567",
        "team": {"id": 328, "display_name": "Recruiting"}, "created_by_user_email": "boss@coffeebean.example",
        "send_via_email": True, "send_via_sms": False, "assessments": [{"test_id": 6}, {"test_id": 7}], **over,
    }


def test_taker_list_item(id: int = BIG_TEST_TAKER_ID, **over: Any) -> dict[str, Any]:
    return {
        "object": "test_taker_list_item", "id": id, "first_name": "Linda", "last_name": "Sample",
        "email": "linda.sample@jofiscore.com", "invitation_created_at": "2024-12-11T22:23:05.312696+00:00",
        "invitation_id": BIG_INVITATION_ID, "custom_id": "example_Group4115", "person_id": "example_nb5IHJjlHe5N7CNJ2afTC",
        "career_navigation_profile_id": None,
        "assessment_url": "https://www.jofiscore.com/welcome/69608c33-1425-4123-9c49-22c5d9d7838c",
        "career_navigation_url": None,
        "scorecard_url": f"https://www.jofiscore.com/team/328/test-takers/{id}/scorecard",
        "job_fit_summary_url": None, "career_options_spotlight_url": None,
        "team": {"id": 1234, "display_name": "Recruiting"}, "account": {"id": 999, "display_name": "CoffeeBean Inc"},
        **over,
    }


def assignment(id: int, assessment_id: int, *, created_at: str = "2026-02-03T12:43:24.598908+00:00",
               started_at: str | None = None, completed_at: str | None = None,
               progress_saved_at: str | None = None) -> dict[str, Any]:
    return {"id": id, "assessment": assessment_ref(assessment_id), "created_at": created_at,
            "started_at": started_at, "completed_at": completed_at, "progress_saved_at": progress_saved_at,
            "is_used_for_scoring": True}


def test_taker(id: int = BIG_TEST_TAKER_ID, assignments: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    """By-id object: the list-item fields plus `assigned_assessments` and top-level mode."""
    obj = test_taker_list_item(id, **over)
    obj.update(mode="live", object="test_taker")
    obj["assigned_assessments"] = assignments if assignments is not None else [
        assignment(11111, 6),
        assignment(22222, 7, started_at="2025-02-03T12:43:31.244+00:00", completed_at="2026-02-03T12:50:36.744Z"),
    ]
    return obj


def career_navigation_profile(id: str = "CNP1234567890", test_taker_id: int = BIG_TEST_TAKER_ID, **over: Any) -> dict[str, Any]:
    return {
        "object": "career_navigation_profile_list_item", "id": id, "first_name": "Linda", "last_name": "Sample",
        "email": "linda.sample@jofiscore.com", "invitation_created_at": "2026-12-11T22:23:05.312696+00:00",
        "invitation_id": 12345, "custom_id": "ABC123", "person_id": "1bb2141c-4100-4b21-9cd2-a998b76cf736",
        "test_taker_id": test_taker_id, "assessment_url": "https://www.jofiscore.com/welcome/x",
        "career_navigation_url": f"https://www.careernavigation.org?c={id}",
        "scorecard_url": f"https://www.jofiscore.com/team/100/test-takers/{test_taker_id}/scorecard",
        "job_fit_summary_url": f"https://www.jofiscore.com/test-takers/{id}/job-fit?r=jfs&zones=1_5",
        "career_options_spotlight_url": f"https://www.jofiscore.com/test-takers/{id}/job-fit?r=cor&zones=1_5",
        "team": {"id": 100, "display_name": "Recruiting"}, "account": {"id": 200, "display_name": "Example Company Inc"},
        **over,
    }


def score(id: int, short_name: str, display_name: str, value: float | None, facets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    obj = {"object": "score", "id": id, "display_name": display_name, "short_name": short_name,
           "description": f"{display_name} description", "is_starred": id == 1, "yellow_band": 5,
           "test_taker_score": value}
    if facets is not None:
        obj["facets"] = facets
    return obj


def scorecard(test_taker_id: int = BIG_TEST_TAKER_ID, short_name: str = "JOFI-295-AS", **over: Any) -> dict[str, Any]:
    return {
        "mode": "live", "object": "scorecard", "test_taker_id": test_taker_id, "invitation_id": 12345,
        "custom_id": "ABC123", "person_id": "1bb2141c-4100-4b21-9cd2-a998b76cf736",
        "career_navigation_profile_id": "CNP1234567890", "first_name": "Linda", "last_name": "Sample",
        "email": "linda.sample@jofiscore.com",
        "scorecard_url": f"https://www.jofiscore.com/team/100/test-takers/{test_taker_id}/scorecard",
        # the nested id (1000) differs from the list's id (295) for the same short_name
        "score_profile": {"id": 1000, "display_name": "Healthcare Practitioners and Technical Zone 5",
                          "short_name": short_name, "riasec_profile": "SA"},
        "riasec_profile": "RCI",
        "scores": {
            "thinking_skills": [score(1, "think", "Thinking Skills Overall", 6.5, facets=[
                score(2, "think-read", "Reading", 7.0), score(3, "think-forms", "Forms", None)])],
            "personality_traits": [score(10, "pers-drive", "Drive", 4.2, facets=[])],
            "career_interests": None,
        },
        **over,
    }


def job_fit_report(test_taker_id: int = BIG_TEST_TAKER_ID, **over: Any) -> dict[str, Any]:
    return {
        "mode": "live", "object": "job_fit_report", "test_taker_id": test_taker_id,
        "career_navigation_profile_id": "CNP1234567890", "riasec_profile": "RCI",
        "zones": [
            {"zone": 1, "occupations": [{"onet_code": "35-2014.00", "title": "Cooks, Restaurant", "fit_score": 0.91},
                                        {"onet_code": "53-7062.00", "title": "Laborers", "fit_score": 0.72}]},
            {"zone": 5, "occupations": [{"onet_code": "29-1141.00", "title": "Registered Nurses", "fit_score": 0.88}]},
        ],
        **over,
    }


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    clone = copy.deepcopy(obj)
    for key in keys:
        clone.pop(key, None)
    return clone
