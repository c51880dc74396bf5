"""The account's past: reference records plus months of invitations that ended up in every state.

Built as a small discrete-event simulation so ids are handed out in the order things happened:
invitation ids by creation time, test taker ids by acceptance time, profiles by completion time.
"""

from __future__ import annotations

import heapq
import math
import random
from datetime import datetime, timedelta
from itertools import count

from . import people
from .models import Account, EmailTemplate, Team, User
from .world import BUNDLES, World

DAY = timedelta(days=1)


def build_world(seed: int, test_takers: int, kind: str = "live") -> World:
    """The account for these arguments, the same every time: reference records and its past."""
    world = World(seed, kind, test_takers)
    populate(world)
    return world


def populate(world: World) -> None:
    rng = world.rng("reference")
    _account(world, rng)
    _teams(world, rng)
    _templates(world, rng)
    _users(world, rng)
    _past_activity(world, world.rng("history"))
    world.touch()


def _account(world: World, rng: random.Random) -> None:
    name, external, domain = rng.choice(people.ACCOUNT_NAMES)
    if world.kind == "test":
        world.account = Account(rng.randint(1000, 9999), f"{name} (test)", None, None, False, "test." + domain)
        return
    endpoint = f"https://hooks.{domain}/webhooks/jofi" if rng.random() < 0.7 else None
    world.account = Account(rng.randint(60, 999), name, external, endpoint, endpoint is not None and rng.random() < 0.8, domain)


def _teams(world: World, rng: random.Random) -> None:
    names = rng.sample(people.TEAM_NAMES, rng.randint(3, 5))
    small_ids = rng.sample(range(100, 1000), len(names) - 1)
    ids = [*small_ids, 1_234_000_000 + rng.randint(0, 999_999)]  # one 10-digit id, as in the docs
    for team_id, name in zip(ids, names, strict=True):
        world.teams[team_id] = Team(team_id, name)


def _templates(world: World, rng: random.Random) -> None:
    next_id = count(1000 + 10 * rng.randint(0, 20))
    team_ids = list(world.teams)
    world.templates.append(EmailTemplate(next(next_id), "Standard Invitation", "invitation", []))
    world.templates.append(EmailTemplate(next(next_id), "Standard Congrats", "congrats", []))
    for team_id in team_ids:
        if rng.random() < 0.7:
            extra = [t for t in team_ids if t != team_id and rng.random() < 0.3][:1]
            name = f"{world.teams[team_id].display_name} Invitation"
            world.templates.append(EmailTemplate(next(next_id), name, "invitation", [team_id, *extra]))
    shared = rng.sample(team_ids, 2)
    world.templates.append(EmailTemplate(next(next_id), f"{world.account.display_name} Congrats", "congrats", shared))


def _users(world: World, rng: random.Random) -> None:
    team_ids = list(world.teams)
    used_emails: set[str] = set()
    for index in range(rng.randint(3, 6)):
        first, last = people.full_name(rng)
        email = people.email_for(first, last, 0, world.account.email_domain).replace("0@", "@")
        if email in used_emails:
            email = email.replace("@", f"{index}@")
        used_emails.add(email)
        teams = rng.sample(team_ids, rng.randint(1, min(3, len(team_ids))))
        default_team = None if index == 3 else teams[0]  # one inviter without a default team
        team_templates = [
            t.id for t in world.templates if t.type == "invitation" and (not t.team_ids or teams[0] in t.team_ids)
        ]
        world.users.append(
            User(
                id=40_000 + rng.randint(0, 59_999),
                email=email,
                first_name=first,
                last_name=last,
                team_ids=teams,
                default_team_id=default_team,
                default_assessment_ids=list(rng.choice(BUNDLES)),
                default_email_template_id=None if index == 2 else team_templates[-1],
                default_congrats_template_id=next((t.id for t in world.templates if t.type == "congrats"), None)
                if rng.random() < 0.7
                else None,
            )
        )


def _past_activity(world: World, rng: random.Random) -> None:
    """Invitations spread over the past; exactly `target_test_takers` of them were accepted."""
    wanted = world.target_test_takers
    pending = max(12, int(wanted * 0.3))
    total = wanted + pending
    span_days = max(20.0, total / world.daily_invitations)
    now = world.now
    created = sorted(now - timedelta(days=rng.uniform(0.02, span_days)) for _ in range(total))

    # Older invitations are far more likely to have been accepted (Efraimidis–Spirakis sampling).
    def key(moment: datetime) -> float:
        weight = 1.0 if now - moment > 3 * DAY else 0.2
        return rng.random() ** (1.0 / weight)

    keys = [key(moment) for moment in created]
    accepted = set(sorted(range(total), key=lambda i: keys[i], reverse=True)[:wanted])

    events: list[tuple[datetime, int, str, object]] = []
    tiebreak = count()
    for index, moment in enumerate(created):
        heapq.heappush(events, (moment, next(tiebreak), "invite", index))

    invitations = {}
    while events:
        moment, _, kind, payload = heapq.heappop(events)
        if kind == "invite":
            invitation = world.random_invitation(moment, rng)
            invitations[payload] = invitation
            if payload in accepted:
                room = (now - moment).total_seconds()
                delay = min(rng.expovariate(1 / 70_000), room * 0.9)
                heapq.heappush(events, (moment + timedelta(seconds=delay), next(tiebreak), "accept", invitation))
        elif kind == "accept":
            taker = world.accept(payload, moment, rng)
            for assignment in taker.assignments:
                for at, step in _progress_plan(moment, now, rng):
                    heapq.heappush(events, (at, next(tiebreak), step, (taker, assignment)))
        elif kind == "start":
            world.start(payload[1], moment, rng)
        elif kind == "complete":
            world.complete(payload[0], payload[1], moment, rng)


def _progress_plan(accepted: datetime, now: datetime, rng: random.Random) -> list[tuple[datetime, str]]:
    """When (if ever) one assignment was started and completed, given how long ago it was assigned."""
    age_days = (now - accepted) / DAY
    if rng.random() < 0.1 or rng.random() > 1 - math.exp(-age_days / 1.5):
        return []
    latest_start = now - timedelta(minutes=20)
    start = accepted + timedelta(days=rng.uniform(0.0, min(age_days * 0.7, 3.0)))
    if start >= latest_start:
        return []
    plan = [(start, "start")]
    finish = start + timedelta(minutes=rng.uniform(12, 80))
    if finish < now - timedelta(minutes=5) and rng.random() < (0.9 if now - start > DAY else 0.5):
        plan.append((finish, "complete"))
    return plan
