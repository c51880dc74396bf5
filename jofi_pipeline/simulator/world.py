"""One simulated JOFI account: its records, its clock, and the lifecycle moves that change them.

This module holds the records and the moves that change one of them; it imports nothing that moves
the world as a whole. `history.build_world(seed, test_takers, kind)` makes the same account every
time for the same arguments; `activity.advance(world, hours)` moves the live clock on; the test
world (fake data for sk_test keys) is built the same way from a different seed stream and is frozen.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from . import people
from .catalog import INTERESTS, PERSONALITY, PRESCREEN, THINKING
from .models import (
    Account,
    Assignment,
    CareerNavigationProfile,
    EmailTemplate,
    Invitation,
    Stamp,
    Team,
    TestTaker,
    User,
)
from .timestamps import PRECISIONS

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
"""The simulated clock's fixed starting point ("now" right after build)."""

_VERSIONS = itertools.count(1)
"""Shared by all worlds, so a rebuilt world never reuses a version a cache has seen."""

TEST_WORLD_TEST_TAKERS = 100
"""Size of the fake test-mode world: smaller than the default live one, larger than every list cap."""

# Assessment bundles inviters use; most include Career Interests (the source of a career profile).
BUNDLES: tuple[tuple[int, ...], ...] = (
    (PERSONALITY, THINKING, INTERESTS),
    (PERSONALITY, THINKING, INTERESTS),
    (PRESCREEN, PERSONALITY, THINKING, INTERESTS),
    (PERSONALITY, INTERESTS),
    (THINKING, INTERESTS),
    (PERSONALITY, THINKING),
)


class IdSequence:
    """Increasing integer ids with irregular gaps, like a shared production sequence."""

    def __init__(self, start: int, rng: random.Random) -> None:
        self._last = start
        self._rng = rng

    def next(self) -> int:
        self._last += self._rng.randint(1, 37)
        return self._last


class World:
    """All records of one account in one mode, plus the clock."""

    def __init__(self, seed: int, kind: str, target_test_takers: int) -> None:
        self.seed = seed
        self.kind = kind
        self.target_test_takers = target_test_takers
        self.frozen = kind == "test"
        self.now = START
        self.version = 0
        self.account: Account
        self.teams: dict[int, Team] = {}
        self.users: list[User] = []
        self.templates: list[EmailTemplate] = []
        self.invitations: dict[int, Invitation] = {}
        self.test_takers: dict[int, TestTaker] = {}
        self.profiles: dict[str, CareerNavigationProfile] = {}
        self.daily_invitations = 4.0
        base = 2_300_000_000 if kind == "live" else 6_100_000_000
        ids_rng = self.rng("ids")
        self._invitation_ids = IdSequence(base + ids_rng.randint(0, 50_000_000), ids_rng)
        self._test_taker_ids = IdSequence(base + 1_000_000_000 + ids_rng.randint(0, 50_000_000), ids_rng)
        self._assignment_ids = IdSequence(base + 2_000_000_000 + ids_rng.randint(0, 50_000_000), ids_rng)
        self._write_rng = self.rng("writes")
        self._serial = 0
        self.on_event = None  # set on the live world to receive lifecycle events (webhooks.WebhookSender.emit)
        self.day_plan: object | None = None  # today's activity, planned at midnight (activity.py)

    def rng(self, purpose: str) -> random.Random:
        """An independent, reproducible random stream for one purpose."""
        return random.Random(f"jofi-sim:{self.seed}:{self.kind}:{purpose}")

    def stamp(self, at: datetime, rng: random.Random) -> Stamp:
        return Stamp(at, rng.choice(PRECISIONS))

    def touch(self) -> None:
        """Mark the world changed so cached responses are dropped."""
        self.version = next(_VERSIONS)

    # ---- lookups ------------------------------------------------------------------------

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users if u.email.lower() == wanted), None)

    def template(self, template_id: int) -> EmailTemplate | None:
        return next((t for t in self.templates if t.id == template_id), None)

    def emit(self, event_type: str, record: object, at: datetime) -> None:
        if self.on_event is not None:
            self.on_event(self, event_type, record, at)

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # ---- lifecycle moves ----------------------------------------------------------------

    def add_invitation(
        self,
        at: datetime,
        rng: random.Random,
        *,
        user: User,
        first_name: str,
        last_name: str,
        email: str,
        team_id: int,
        assessment_ids: list[int],
        person_id: str | None = None,
        custom_id: str | None = None,
        phone: str | None = None,
        email_template_id: int | None = None,
        send_via_email: bool = True,
        send_via_sms: bool = False,
        invitation_id: int | None = None,
        store: bool = True,
    ) -> Invitation:
        """A new invitation; with `store=False` (test-mode writes) the world is left untouched."""
        invitation = Invitation(
            id=invitation_id if invitation_id is not None else self._invitation_ids.next(),
            first_name=first_name,
            last_name=last_name,
            email=email,
            person_id=person_id,
            custom_id=custom_id,
            phone=phone,
            assessment_url=f"https://www.jofiscore.com/welcome/{people.uuid4(rng)}",
            created_at=self.stamp(at, rng),
            team_id=team_id,
            created_by_user_email=user.email,
            send_via_email=send_via_email,
            send_via_sms=send_via_sms,
            assessment_ids=list(assessment_ids),
            email_template_id=email_template_id if email_template_id is not None else user.default_email_template_id,
            congrats_email_template_id=user.default_congrats_template_id,
        )
        if store:
            self.invitations[invitation.id] = invitation
            self.emit("invitation.created", invitation, at)
        return invitation

    def random_invitation(self, at: datetime, rng: random.Random) -> Invitation:
        """An invitation as an inviter would send it: mostly their defaults, sometimes overrides."""
        user = rng.choice(self.users)
        team_id = user.default_team_id if user.default_team_id and rng.random() < 0.8 else rng.choice(user.team_ids)
        bundle = user.default_assessment_ids if user.default_assessment_ids and rng.random() < 0.75 else rng.choice(BUNDLES)
        first, last = people.full_name(rng)
        contact = people.phone(rng)
        return self.add_invitation(
            at,
            rng,
            user=user,
            first_name=first,
            last_name=last,
            email=people.email_for(first, last, self.next_serial(), rng.choice(("example.com", "example.org", "mail.example.net"))),
            team_id=team_id,
            assessment_ids=list(bundle),
            person_id=people.person_id(rng),
            custom_id=people.custom_id(rng),
            phone=contact,
            send_via_email=rng.random() < 0.9,
            send_via_sms=contact is not None and rng.random() < 0.5,
        )

    def accept(self, invitation: Invitation, at: datetime, rng: random.Random) -> TestTaker:
        """The participant accepts: JOFI creates the test taker and assigns the invited assessments."""
        accepted = self.stamp(at, rng)
        taker = TestTaker(
            id=self._test_taker_ids.next(),
            invitation_id=invitation.id,
            first_name=invitation.first_name,
            last_name=invitation.last_name,
            email=invitation.email,
            person_id=invitation.person_id,
            custom_id=invitation.custom_id,
            assessment_url=invitation.assessment_url,
            invitation_created_at=invitation.created_at,
            team_id=invitation.team_id,
            created_at=accepted,
        )
        for assessment_id in invitation.assessment_ids:
            taker.assignments.append(
                Assignment(
                    id=self._assignment_ids.next(),
                    assessment_id=assessment_id,
                    created_at=self.stamp(at + timedelta(milliseconds=rng.randint(50, 900)), rng),
                    is_used_for_scoring=assessment_id != PRESCREEN,
                )
            )
        invitation.accepted_at = accepted
        invitation.test_taker_id = taker.id
        self.test_takers[taker.id] = taker
        self.emit("invitation.accepted", invitation, at)
        self.emit("test_taker.created", taker, at)
        return taker

    def start(self, assignment: Assignment, at: datetime, rng: random.Random) -> None:
        assignment.started_at = self.stamp(at, rng)
        assignment.progress_saved_at = self.stamp(at + timedelta(seconds=rng.randint(30, 600)), rng)

    def save_progress(self, assignment: Assignment, at: datetime, rng: random.Random) -> None:
        assignment.progress_saved_at = self.stamp(at, rng)

    def complete(
        self, taker: TestTaker, assignment: Assignment, at: datetime, rng: random.Random
    ) -> CareerNavigationProfile | None:
        """Finish an assessment; finishing Career Interests creates the career navigation profile."""
        assignment.completed_at = self.stamp(at, rng)
        assignment.progress_saved_at = assignment.completed_at
        self.emit("test_taker.assessment_completed", taker, at)
        if assignment.assessment_id != INTERESTS or taker.career_navigation_profile_id:
            return None
        profile_id = f"CNP{rng.randrange(10**9, 10**10)}"
        while profile_id in self.profiles:
            profile_id = f"CNP{rng.randrange(10**9, 10**10)}"
        profile = CareerNavigationProfile(profile_id, taker.id, self.stamp(at + timedelta(seconds=rng.randint(5, 240)), rng))
        self.profiles[profile_id] = profile
        taker.career_navigation_profile_id = profile_id
        self.invitations[taker.invitation_id].career_navigation_profile_id = profile_id
        self.emit("career_navigation_profile.created", profile, profile.created_at.at)
        return profile

    # ---- API writes -------------------------------------------------------------------

    def write_moment(self) -> datetime:
        """The creation time for an API write: the clock, nudged so writes stay ordered."""
        return self.now + timedelta(microseconds=self.next_serial() * 1000 + self._write_rng.randint(0, 999))

    @property
    def write_rng(self) -> random.Random:
        return self._write_rng
