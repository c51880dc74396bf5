"""POST and PUT /invitations: body validation (400s) and the changes a live write makes.

Test mode runs the same validation, then answers a fake object built from the test world and
stores nothing (section 1.5). Unknown body fields are ignored, as most JSON APIs do.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from typing import Any

from .catalog import ASSESSMENTS
from .errors import bad_request
from .models import Invitation, User
from .world import World

UPDATABLE = (
    "first_name", "last_name", "email", "person_id", "custom_id", "phone", "team_id",
    "email_template_id", "congrats_email_template_id", "send_via_email", "send_via_sms",
)


def parse_json_object(raw: bytes, mode: str) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.", mode) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", mode)
    return body


class _Checker:
    """Field-by-field checks that name the offending field in the 400 message."""

    def __init__(self, body: dict[str, Any], mode: str) -> None:
        self.body = body
        self.mode = mode

    def fail(self, message: str):
        return bad_request(message, self.mode)

    def text(self, name: str, required: bool = False, nullable: bool = True) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise self.fail(f"Missing required parameter: {name}.")
            if name in self.body and not nullable:
                raise self.fail(f"{name} must not be null.")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(f"{name} must be a non-empty string.")
        return value

    def email(self, name: str, required: bool = False) -> str | None:
        value = self.text(name, required, nullable=False)
        if value is not None and ("@" not in value or value.startswith("@") or value.endswith("@")):
            raise self.fail(f"{name} must be an email address.")
        return value

    def integer(self, name: str) -> int | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{name} must be an integer.")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(f"{name} must be a boolean.")
        return value

    def team(self, world: World, name: str = "team_id") -> int | None:
        team_id = self.integer(name)
        if team_id is not None and team_id not in world.teams:
            raise self.fail(f"{name} {team_id} is not a team of this account.")
        return team_id

    def template(self, world: World, name: str, kind: str) -> int | None:
        template_id = self.integer(name)
        if template_id is not None:
            template = world.template(template_id)
            if template is None or template.type != kind:
                raise self.fail(f"{name} {template_id} is not a {kind} email template of this account.")
        return template_id

    def assessments(self) -> list[int] | None:
        value = self.body.get("assessments_to_assign")
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise self.fail("assessments_to_assign must be a non-empty array of {\"test_id\": <int>}.")
        ids: list[int] = []
        for item in value:
            test_id = item.get("test_id") if isinstance(item, dict) else None
            if isinstance(test_id, bool) or not isinstance(test_id, int) or test_id not in ASSESSMENTS:
                raise self.fail(f"assessments_to_assign: unknown test_id {test_id!r}; see GET /assessments.")
            if test_id not in ids:
                ids.append(test_id)
        return ids


def _inviter(checker: _Checker, worlds: list[World]) -> tuple[User, World]:
    email = checker.email("created_by_user_email", required=True)
    for world in worlds:
        user = world.user_by_email(email or "")
        if user is not None:
            return user, world
    raise checker.fail("created_by_user_email is not a user of this account; see GET /users.")


def create_invitation(
    world: World, body: dict[str, Any], mode: str, inviter_worlds: list[World], store: bool
) -> Invitation:
    """Validate a POST body and create the invitation in `world` (kept only when `store`)."""
    check = _Checker(body, mode)
    first = check.text("first_name", required=True)
    last = check.text("last_name", required=True)
    email = check.email("email", required=True)
    user, user_world = _inviter(check, inviter_worlds)
    if user_world is not world:  # a real inviter in test mode: the fake object uses a fake inviter
        user = world.users[0]
    team_id = check.team(world)
    if team_id is None:
        team_id = user.default_team_id
        if team_id is None:
            raise check.fail("team_id is required: the inviter has no default team.")
    assessment_ids = check.assessments() or list(user.default_assessment_ids)
    if not assessment_ids:
        raise check.fail("assessments_to_assign is required: the inviter has no default assessments.")
    template_id = check.template(world, "email_template_id", "invitation")
    phone = check.text("phone")
    send_sms = check.boolean("send_via_sms")
    if send_sms and not phone:
        raise check.fail("send_via_sms requires phone.")
    send_email = check.boolean("send_via_email")
    return world.add_invitation(
        world.write_moment(),
        world.write_rng,
        user=user,
        first_name=first or "",
        last_name=last or "",
        email=email or "",
        team_id=team_id,
        assessment_ids=assessment_ids,
        person_id=check.text("person_id"),
        custom_id=check.text("custom_id"),
        phone=phone,
        email_template_id=template_id,
        send_via_email=True if send_email is None else send_email,
        send_via_sms=bool(send_sms),
        invitation_id=None if store else fake_id(body),
        store=store,
    )


def updated_invitation(world: World, current: Invitation, body: dict[str, Any], mode: str) -> Invitation:
    """A copy of `current` with the PUT body applied; the caller stores it or not."""
    check = _Checker(body, mode)
    present = [name for name in UPDATABLE if name in body]
    if not present:
        raise check.fail(f"Nothing to update: send at least one of {', '.join(UPDATABLE)}.")
    changes: dict[str, Any] = {}
    for name in present:
        if name in ("first_name", "last_name"):
            changes[name] = check.text(name, required=True)
        elif name == "email":
            changes[name] = check.email(name, required=True)
        elif name in ("person_id", "custom_id", "phone"):
            changes[name] = check.text(name)
        elif name == "team_id":
            changes[name] = check.team(world)
            if changes[name] is None:
                raise check.fail("team_id must not be null.")
        elif name == "email_template_id":
            changes[name] = check.template(world, name, "invitation")
        elif name == "congrats_email_template_id":
            changes[name] = check.template(world, name, "congrats")
        else:
            value = check.boolean(name)
            if value is None:
                raise check.fail(f"{name} must be a boolean.")
            changes[name] = value
    result = replace(current, **changes)
    if result.send_via_sms and not result.phone:
        raise check.fail("send_via_sms requires phone.")
    return result


def fake_id(body: dict[str, Any]) -> int:
    """A stable 10-digit id for a test-mode object that is never stored."""
    digest = zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode())
    return 9_000_000_000 + digest % 999_999_999
