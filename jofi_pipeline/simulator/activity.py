"""One simulated day of account activity, reproducible from (seed, day number).

Only records that existed when the day began can move during it, which keeps every timestamp
after the one it depends on (accepted after created, started after assigned, ...).
"""

from __future__ import annotations

from datetime import timedelta

from .world import START, ActivitySummary, World

DAY = timedelta(days=1)
PENDING_FOR = timedelta(days=21)  # invitations older than this are never accepted any more
ACTIVE_FOR = timedelta(days=45)  # test takers older than this have abandoned what is left
ACCEPT_PER_DAY = 0.35
START_PER_DAY = 0.35
COMPLETE_PER_DAY = 0.55


def simulate_day(world: World, summary: ActivitySummary) -> None:
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

    for offset, _, kind, payload in sorted(events, key=lambda e: (e[0], e[1])):
        moment = day_start + timedelta(seconds=offset)
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
