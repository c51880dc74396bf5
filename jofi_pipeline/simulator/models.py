"""The records a simulated account holds. Plain mutable dataclasses; rendering lives in views.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .timestamps import format_ts


@dataclass(frozen=True)
class Stamp:
    """A moment plus the fractional precision its string form keeps (JOFI varies it)."""

    at: datetime
    digits: int

    @property
    def text(self) -> str:
        return format_ts(self.at, self.digits)


@dataclass
class Account:
    id: int
    display_name: str
    display_name_external: str | None
    webhook_endpoint: str | None
    webhooks_enabled: bool
    email_domain: str


@dataclass
class Team:
    id: int
    display_name: str


@dataclass
class User:
    id: int
    email: str
    first_name: str
    last_name: str
    team_ids: list[int]
    default_team_id: int | None
    default_assessment_ids: list[int]
    default_email_template_id: int | None
    default_congrats_template_id: int | None


@dataclass
class EmailTemplate:
    id: int
    display_name: str
    type: str  # "invitation" | "congrats"
    team_ids: list[int]


@dataclass
class Invitation:
    id: int
    first_name: str
    last_name: str
    email: str
    person_id: str | None
    custom_id: str | None
    phone: str | None
    assessment_url: str
    created_at: Stamp
    team_id: int
    created_by_user_email: str
    send_via_email: bool
    send_via_sms: bool
    assessment_ids: list[int]
    email_template_id: int | None = None
    congrats_email_template_id: int | None = None
    accepted_at: Stamp | None = None
    test_taker_id: int | None = None
    career_navigation_profile_id: str | None = None


@dataclass
class Assignment:
    """One assessment assigned to a test taker (`assigned_assessments` item)."""

    id: int
    assessment_id: int
    created_at: Stamp
    started_at: Stamp | None = None
    completed_at: Stamp | None = None
    progress_saved_at: Stamp | None = None
    is_used_for_scoring: bool = True


@dataclass
class TestTaker:
    """Created when an invitation is accepted; identity fields are copied from it at that moment."""

    __test__ = False  # not a pytest test class

    id: int
    invitation_id: int
    first_name: str
    last_name: str
    email: str
    person_id: str | None
    custom_id: str | None
    assessment_url: str
    invitation_created_at: Stamp
    team_id: int
    created_at: Stamp
    assignments: list[Assignment] = field(default_factory=list)
    career_navigation_profile_id: str | None = None

    def completed_ids(self) -> set[int]:
        return {a.assessment_id for a in self.assignments if a.completed_at is not None}

    def assigned_ids(self) -> set[int]:
        return {a.assessment_id for a in self.assignments}


@dataclass
class CareerNavigationProfile:
    id: str
    test_taker_id: int
    created_at: Stamp
