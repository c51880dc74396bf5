"""The live clock: `advance(world, hours)` plays each day's account activity as its hours go by.

A day is planned at its midnight, reproducibly from (seed, day number), and only records that
existed then can move during it, which keeps every timestamp after the one it depends on (accepted
after created, started after assigned, ...). The plan is then played up to the new clock, so a
client that polls every hour sees the day arrive hour by hour, and advancing 24 times one hour
leaves the world exactly as advancing one day does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .world import START, World

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PENDING_FOR = timedelta(days=21)  # invitations older than this are never accepted any more
ACTIVE_FOR = timedelta(days=45)  # test takers older than this have abandoned what is left
ACCEPT_PER_DAY = 0.35
START_PER_DAY = 0.35
COMPLETE_PER_DAY = 0.55


@dataclass
class DayPlan:
    """One day's events, (seconds after midnight, tiebreak, kind, payload), sorted; `played` so far."""

    start: datetime
    rng: random.Random
    events: list[tuple[float, int, str, object]]
    played: int = 0


@dataclass
class ActivitySummary:
    """What advance() did, by kind, with the ids a test can look up."""

    invitations_created: list[int] = field(default_factory=list)
    invitations_accepted: list[int] = field(default_factory=list)
    test_takers_created: list[int] = field(default_factory=list)
    test_takers_updated: set[int] = field(default_factory=set)
    assessments_started: list[dict] = field(default_factory=list)
    assessments_completed: list[dict] = field(default_factory=list)
    career_navigation_profiles_created: list[str] = field(default_factory=list)

    def as_dict(self, hours: int, now: datetime) -> dict:
        return {
            "days": hours // 24 if hours % 24 == 0 else hours / 24,
            "hours": hours,
            "now": now.isoformat(),
            "invitations_created": self.invitations_created,
            "invitations_accepted": self.invitations_accepted,
            "test_takers_created": self.test_takers_created,
            "test_takers_updated": sorted(self.test_takers_updated),
            "assessments_started": self.assessments_started,
            "assessments_completed": self.assessments_completed,
            "career_navigation_profiles_created": self.career_navigation_profiles_created,
        }


def advance(world: World, hours: int) -> dict:
    """Move the clock `hours` forward, playing the activity due meanwhile. Frozen worlds refuse."""
    if world.frozen:
        raise RuntimeError("the test world is fake data and does not move")
    summary = ActivitySummary()
    end = world.now + HOUR * max(0, hours)
    while world.now < end:
        plan = world.day_plan if isinstance(world.day_plan, DayPlan) else plan_day(world)
        world.day_plan = plan
        until = min(end, plan.start + DAY)
        _play(world, plan, until, summary)
        world.now = until
        if until == plan.start + DAY:
            world.day_plan = None
    world.touch()
    return summary.as_dict(max(0, hours), world.now)


def plan_day(world: World) -> DayPlan:
    """The day starting at `world.now` (a midnight): who is invited, accepts, starts, completes when."""
    day_number = (world.now - START) // DAY
    rng = world.rng(f"day:{day_number}")
    day_start = world.now
    events: list[tuple[float, int, str, object]] = []

    def at(low: float = 0.0, high: float = 86_399.0) -> float:
        return rng.uniform(low, high)

    new_count = max(0, round(world.daily_invitations * rng.uniform(0.5, 1.6)))
    for _ in range(new_count):
        events.append((at(), len(events), "invite", None))
    for invitation in world.invitations.values():
        if invitation.accepted_at is None and day_start - invitation.created_at.at < PENDING_FOR:
            if rng.random() < ACCEPT_PER_DAY:
                events.append((at(), len(events), "accept", invitation))
    for taker in world.test_takers.values():
        if day_start - taker.created_at.at > ACTIVE_FOR:
            continue
        for assignment in taker.assignments:
            if assignment.started_at is None:
                if rng.random() < START_PER_DAY:
                    begin = at(0, 80_000)
                    events.append((begin, len(events), "start", (taker, assignment)))
                    if rng.random() < COMPLETE_PER_DAY:
                        events.append((begin + rng.uniform(900, 5_000), len(events), "complete", (taker, assignment)))
            elif assignment.completed_at is None:
                if rng.random() < COMPLETE_PER_DAY:
                    events.append((at(), len(events), "complete", (taker, assignment)))
                elif rng.random() < 0.5:
                    events.append((at(), len(events), "save", (taker, assignment)))
    return DayPlan(day_start, rng, sorted(events, key=lambda e: (e[0], e[1])))


def _play(world: World, plan: DayPlan, until: datetime, summary: ActivitySummary) -> None:
    """Apply the plan's events that happen before `until`, in order, with the day's own dice."""
    rng = plan.rng
    while plan.played < len(plan.events):
        offset, _, kind, payload = plan.events[plan.played]
        moment = plan.start + timedelta(seconds=offset)
        if moment >= until:
            return
        plan.played += 1
        if kind == "invite":
            summary.invitations_created.append(world.random_invitation(moment, rng).id)
        elif kind == "accept":
            taker = world.accept(payload, moment, rng)
            summary.invitations_accepted.append(payload.id)
            summary.test_takers_created.append(taker.id)
        else:
            taker, assignment = payload
            summary.test_takers_updated.add(taker.id)
            ref = {"test_taker_id": taker.id, "assessment_id": assignment.assessment_id, "assignment_id": assignment.id}
            if kind == "start":
                world.start(assignment, moment, rng)
                summary.assessments_started.append(ref)
            elif kind == "save":
                world.save_progress(assignment, moment, rng)
            else:
                profile = world.complete(taker, assignment, moment, rng)
                summary.assessments_completed.append(ref)
                if profile is not None:
                    summary.career_navigation_profiles_created.append(profile.id)
