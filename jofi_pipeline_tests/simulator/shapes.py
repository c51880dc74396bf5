"""Documented fields per object (jofi-api.md sections 2 and 8.7): name -> allowed types, nullability."""

from __future__ import annotations

from typing import Any

from .conftest import INT32_MAX, TIMESTAMP

TS = "timestamp"
REF = "ref"  # {id: int, display_name: str}
NULL = type(None)

ACCOUNT = {
    "mode": (str,), "object": (str,), "id": (int,), "display_name": (str,), "display_name_external": (str, NULL),
    "teams_count": (int,), "users_count": (int,), "invitations_count": (int,), "test_takers_seats_used_count": (int,),
    "prescreens_completed_count": (int,), "thinking_skills_completed_count": (int,), "personality_completed_count": (int,),
    "career_interests_completed_count": (int,), "webhook_endpoint": (str, NULL), "webhooks_enabled": (bool,),
}
TEAM = {"object": (str,), "id": (int,), "display_name": (str,), "users_count": (int,), "invitations_count": (int,), "test_takers_count": (int,)}
EMAIL_TEMPLATE = {"object": (str,), "id": (int,), "display_name": (str,), "type": (str,), "team_ids": (list,)}
USER = {
    "object": (str,), "id": (int,), "email": (str,), "first_name": (str,), "last_name": (str,),
    "default_team": (REF, NULL), "default_assessments": (list,), "default_email_template_id": (int, NULL),
}
ASSESSMENT = {"object": (str,), "id": (int,), "short_name": (str,), "display_name": (str,)}
SCORE_PROFILE = {"object": (str,), "id": (int,), "short_name": (str,), "display_name": (str,)}
INVITATION = {
    "object": (str,), "id": (int,), "first_name": (str,), "last_name": (str,), "email": (str,), "person_id": (str, NULL),
    "custom_id": (str, NULL), "phone": (str, NULL), "assessment_url": (str,), "created_at": (TS,), "accepted_at": (TS, NULL),
    "test_taker_id": (int, NULL), "career_navigation_profile_id": (str, NULL), "team": (REF,),
    "created_by_user_email": (str,), "send_via_email": (bool,), "send_via_sms": (bool,), "assessments": (list,),
}
TEST_TAKER_ITEM = {
    "object": (str,), "id": (int,), "first_name": (str,), "last_name": (str,), "email": (str,), "invitation_created_at": (TS,),
    "invitation_id": (int,), "custom_id": (str, NULL), "person_id": (str, NULL), "career_navigation_profile_id": (str, NULL),
    "assessment_url": (str,), "career_navigation_url": (str, NULL), "scorecard_url": (str,), "job_fit_summary_url": (str, NULL),
    "career_options_spotlight_url": (str, NULL), "team": (REF,), "account": (REF,),
}
TEST_TAKER = {**TEST_TAKER_ITEM, "assigned_assessments": (list,)}
ASSIGNMENT = {
    "id": (int,), "assessment": (dict,), "created_at": (TS,), "started_at": (TS, NULL), "completed_at": (TS, NULL),
    "progress_saved_at": (TS, NULL), "is_used_for_scoring": (bool,),
}
PROFILE = {
    "object": (str,), "id": (str,), "first_name": (str,), "last_name": (str,), "email": (str,), "invitation_created_at": (TS,),
    "invitation_id": (int,), "custom_id": (str, NULL), "person_id": (str, NULL), "test_taker_id": (int,), "assessment_url": (str,),
    "career_navigation_url": (str,), "scorecard_url": (str,), "job_fit_summary_url": (str,), "career_options_spotlight_url": (str,),
    "team": (REF,), "account": (REF,),
}
SCORECARD = {
    "mode": (str,), "object": (str,), "test_taker_id": (int,), "invitation_id": (int,), "custom_id": (str, NULL),
    "person_id": (str, NULL), "career_navigation_profile_id": (str, NULL), "first_name": (str,), "last_name": (str,),
    "email": (str,), "scorecard_url": (str,), "score_profile": (dict,), "riasec_profile": (str, NULL), "scores": (dict,),
}
SCORE = {
    "object": (str,), "id": (int,), "display_name": (str,), "short_name": (str,), "description": (str,), "is_starred": (bool,),
    "yellow_band": (int,), "test_taker_score": (float, int, NULL),
}
JOB_FIT = {
    "mode": (str,), "object": (str,), "test_taker_id": (int,), "career_navigation_profile_id": (str,),
    "riasec_profile": (str,), "zones": (list,),
}
LIST = {"mode": (str,), "object": (str,), "total_count": (int,), "has_more": (bool,), "data": (list,)}
ERROR = {"mode": (str, NULL), "object": (str,), "error": (dict,)}


def _matches(value: Any, kind: Any) -> bool:
    if kind == TS:
        return isinstance(value, str) and bool(TIMESTAMP.match(value))
    if kind == REF:
        return isinstance(value, dict) and set(value) == {"id", "display_name"} and type(value["id"]) is int and isinstance(value["display_name"], str)
    if kind is int:
        return type(value) is int
    if kind is float:
        return type(value) is float
    return isinstance(value, kind)


def check(obj: dict, schema: dict, object_name: str | None = None, mode: str | None = None) -> None:
    """Exactly the documented keys, each of an allowed type; the right object string and mode."""
    assert set(obj) == set(schema), f"keys differ: extra {set(obj) - set(schema)}, missing {set(schema) - set(obj)}"
    for name, kinds in schema.items():
        assert any(_matches(obj[name], k) for k in kinds), f"{name}={obj[name]!r} is not one of {kinds}"
    if object_name is not None:
        assert obj["object"] == object_name
    if mode is not None:
        assert obj["mode"] == mode


def big_id(value: int) -> bool:
    return type(value) is int and value > INT32_MAX
