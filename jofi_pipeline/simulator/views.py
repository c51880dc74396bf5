"""Records -> the JSON objects the API answers (section 2 field lists plus the 8.7 choices).

List items carry no `mode`; single objects get it from the route (see `with_mode`).
"""

from __future__ import annotations

import functools
import random

from .catalog import ASSESSMENTS, INTERESTS, OCCUPATIONS, RIASEC_SCORE_IDS, SCORE_PROFILES, SECTIONS, ScoreDefinition, ScoreProfile
from .models import Assignment, CareerNavigationProfile, Invitation, Stamp, TestTaker
from .world import World

SITE = "https://www.jofiscore.com"


def _ts(value: Stamp | None) -> str | None:
    return value.text if value is not None else None


def with_mode(mode: str, obj: dict) -> dict:
    return {"mode": mode, **obj}


def _team_ref(world: World, team_id: int) -> dict:
    return {"id": team_id, "display_name": world.teams[team_id].display_name}


def _account_ref(world: World) -> dict:
    return {"id": world.account.id, "display_name": world.account.display_name}


def account(world: World) -> dict:
    takers = world.test_takers.values()

    def completed(assessment_id: int) -> int:
        return sum(1 for t in takers for a in t.assignments if a.assessment_id == assessment_id and a.completed_at)

    acc = world.account
    return {
        "object": "account",
        "id": acc.id,
        "display_name": acc.display_name,
        "display_name_external": acc.display_name_external,
        "teams_count": len(world.teams),
        "users_count": len(world.users),
        "invitations_count": len(world.invitations),
        "test_takers_seats_used_count": len(world.test_takers),
        "prescreens_completed_count": completed(5),
        "thinking_skills_completed_count": completed(7),
        "personality_completed_count": completed(6),
        "career_interests_completed_count": completed(8),
        "webhook_endpoint": acc.webhook_endpoint,
        "webhooks_enabled": acc.webhooks_enabled,
    }


def users(world: World) -> list[dict]:
    return [
        {
            "object": "user_list_item",
            "id": u.id,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "default_team": _team_ref(world, u.default_team_id) if u.default_team_id else None,
            "default_assessments": [ASSESSMENTS[i].ref() for i in u.default_assessment_ids],
            "default_email_template_id": u.default_email_template_id,
        }
        for u in world.users
    ]


def teams(world: World) -> list[dict]:
    invitations: dict[int, int] = {}
    takers: dict[int, int] = {}
    for inv in world.invitations.values():
        invitations[inv.team_id] = invitations.get(inv.team_id, 0) + 1
    for taker in world.test_takers.values():
        takers[taker.team_id] = takers.get(taker.team_id, 0) + 1
    return [
        {
            "object": "team_list_item",
            "id": team.id,
            "display_name": team.display_name,
            "users_count": sum(1 for u in world.users if team.id in u.team_ids),
            "invitations_count": invitations.get(team.id, 0),
            "test_takers_count": takers.get(team.id, 0),
        }
        for team in world.teams.values()
    ]


def email_templates(world: World) -> list[dict]:
    return [
        {"object": "email_template_list_item", "id": t.id, "display_name": t.display_name, "type": t.type, "team_ids": list(t.team_ids)}
        for t in world.templates
    ]


def assessments() -> list[dict]:
    return [{"object": "assessment_list_item", **a.ref()} for a in ASSESSMENTS.values()]


def score_profiles() -> list[dict]:
    return [
        {"object": "score_profile_list_item", "id": p.id, "short_name": p.short_name, "display_name": p.display_name}
        for p in SCORE_PROFILES
    ]


def invitation(world: World, inv: Invitation, item: bool = False) -> dict:
    return {
        "object": "invitation_list_item" if item else "invitation",
        "id": inv.id,
        "first_name": inv.first_name,
        "last_name": inv.last_name,
        "email": inv.email,
        "person_id": inv.person_id,
        "custom_id": inv.custom_id,
        "phone": inv.phone,
        "assessment_url": inv.assessment_url,
        "created_at": inv.created_at.text,
        "accepted_at": _ts(inv.accepted_at),
        "test_taker_id": inv.test_taker_id,
        "career_navigation_profile_id": inv.career_navigation_profile_id,
        "team": _team_ref(world, inv.team_id),
        "created_by_user_email": inv.created_by_user_email,
        "send_via_email": inv.send_via_email,
        "send_via_sms": inv.send_via_sms,
        "assessments": [{"test_id": i} for i in inv.assessment_ids],
    }


def _profile_urls(profile_id: str | None) -> dict:
    if profile_id is None:
        return {"career_navigation_url": None, "job_fit_summary_url": None, "career_options_spotlight_url": None}
    return {
        "career_navigation_url": f"https://www.careernavigation.org?c={profile_id}",
        "job_fit_summary_url": f"{SITE}/test-takers/{profile_id}/job-fit?r=jfs&zones=1_5",
        "career_options_spotlight_url": f"{SITE}/test-takers/{profile_id}/job-fit?r=cor&zones=1_5",
    }


def _scorecard_url(taker: TestTaker) -> str:
    return f"{SITE}/team/{taker.team_id}/test-takers/{taker.id}/scorecard"


def _assignment(a: Assignment) -> dict:
    return {
        "id": a.id,
        "assessment": ASSESSMENTS[a.assessment_id].ref(),
        "created_at": a.created_at.text,
        "started_at": _ts(a.started_at),
        "completed_at": _ts(a.completed_at),
        "progress_saved_at": _ts(a.progress_saved_at),
        "is_used_for_scoring": a.is_used_for_scoring,
    }


def test_taker(world: World, taker: TestTaker, item: bool = False) -> dict:
    obj = {
        "object": "test_taker_list_item" if item else "test_taker",
        "id": taker.id,
        **_person(world, taker, "career_navigation_profile_id", taker.career_navigation_profile_id, taker.career_navigation_profile_id),
    }
    if not item:
        obj["assigned_assessments"] = [_assignment(a) for a in taker.assignments]
    return obj


def career_navigation_profile(world: World, profile: CareerNavigationProfile, item: bool = False) -> dict:
    taker = world.test_takers[profile.test_taker_id]
    return {
        "object": "career_navigation_profile_list_item" if item else "career_navigation_profile",
        "id": profile.id,
        **_person(world, taker, "test_taker_id", taker.id, profile.id),
    }


def _person(world: World, taker: TestTaker, link: str, linked: object, profile_id: str | None) -> dict:
    """What a test taker and their career navigation profile both say about the person, in order,
    around the one field that links each to the other (`link`)."""
    return {
        "first_name": taker.first_name,
        "last_name": taker.last_name,
        "email": taker.email,
        "invitation_created_at": taker.invitation_created_at.text,
        "invitation_id": taker.invitation_id,
        "custom_id": taker.custom_id,
        "person_id": taker.person_id,
        link: linked,
        "assessment_url": taker.assessment_url,
        "scorecard_url": _scorecard_url(taker),
        **_profile_urls(profile_id),
        "team": _team_ref(world, taker.team_id),
        "account": _account_ref(world),
    }


# ---- scorecards and job fit -----------------------------------------------------------


def raw_score(world: World, taker: TestTaker, score_id: int) -> float:
    """A test taker's stable 0–10 score on one scale, one decimal."""
    return _stable_score(world.seed, world.kind, taker.id, score_id)


@functools.lru_cache(maxsize=1 << 16)
def _stable_score(seed: int, kind: str, taker_id: int, score_id: int) -> float:
    """Kept: a test taker's scorecards (one per score profile, asked one after the other) read the
    same ~20 scores, and seeding a generator costs ~6 µs, most of a scorecard's first render.
    At most 65,536 scores (~13 MB): a large world's job-fit reports, asked after every scorecard,
    mostly seed again."""
    rng = random.Random(f"jofi-sim:{seed}:{kind}:score:{taker_id}:{score_id}")
    return round(min(10.0, max(0.0, rng.gauss(5.5, 2.2))), 1)


def riasec_profile(world: World, taker: TestTaker) -> str | None:
    if INTERESTS not in taker.completed_ids():
        return None
    ranked = sorted(RIASEC_SCORE_IDS, key=lambda sid: (-raw_score(world, taker, sid), sid))
    return "".join(RIASEC_SCORE_IDS[sid] for sid in ranked[:3])


def _score(world: World, taker: TestTaker, definition: ScoreDefinition, profile: ScoreProfile, scored: bool, facets: bool) -> dict:
    obj = {
        "object": "score",
        "id": definition.id,
        "display_name": definition.display_name,
        "short_name": definition.short_name,
        "description": definition.description,
        "is_starred": (profile.id * 7 + definition.id) % 3 == 0,
        "yellow_band": 3 + (profile.id + definition.id) % 5,
        "test_taker_score": raw_score(world, taker, definition.id) if scored else None,
    }
    if facets:
        obj["facets"] = [_score(world, taker, f, profile, scored, False) for f in definition.facets]
    return obj


def scorecard(world: World, taker: TestTaker, profile: ScoreProfile) -> dict:
    """Sections: null when not assigned; scores null until that assessment is completed."""
    assigned, completed = taker.assigned_ids(), taker.completed_ids()
    scores = {}
    for section, (assessment_id, definitions) in SECTIONS.items():
        if assessment_id not in assigned:
            scores[section] = None
        else:
            scores[section] = [_score(world, taker, d, profile, assessment_id in completed, True) for d in definitions]
    return {
        "object": "scorecard",
        "test_taker_id": taker.id,
        "invitation_id": taker.invitation_id,
        "custom_id": taker.custom_id,
        "person_id": taker.person_id,
        "career_navigation_profile_id": taker.career_navigation_profile_id,
        "first_name": taker.first_name,
        "last_name": taker.last_name,
        "email": taker.email,
        "scorecard_url": _scorecard_url(taker),
        "score_profile": {
            "id": profile.id,
            "display_name": profile.display_name,
            "short_name": profile.short_name,
            "riasec_profile": profile.riasec_profile,
        },
        "riasec_profile": riasec_profile(world, taker),
        "scores": scores,
    }


def job_fit_report(world: World, taker: TestTaker) -> dict:
    letter_score = {letter: raw_score(world, taker, sid) for sid, letter in RIASEC_SCORE_IDS.items()}
    zones = []
    for zone in range(1, 6):
        occupations = []
        for occ in OCCUPATIONS:
            if occ.zone == zone:
                weights = [3, 2, 1][: len(occ.riasec)]
                fit = sum(w * letter_score[c] for w, c in zip(weights, occ.riasec, strict=False)) / sum(weights)
                occupations.append({"onet_code": occ.onet_code, "title": occ.title, "fit_score": round(fit, 1)})
        occupations.sort(key=lambda o: (-o["fit_score"], o["onet_code"]))
        zones.append({"zone": zone, "occupations": occupations})
    return {
        "object": "job_fit_report",
        "test_taker_id": taker.id,
        "career_navigation_profile_id": taker.career_navigation_profile_id,
        "riasec_profile": riasec_profile(world, taker),
        "zones": zones,
    }
