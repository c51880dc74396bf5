"""The entity registry: one declarative record per JOFI entity, the facts every room derives from.

Modelled on dlt's `rest_api` resource config (one record per endpoint, from which the client, the
tables and the checks follow): the client builds its routes from `list_route` / `by_id`, the sync
reads the lists marked `whole` or `capped`, the webhook receiver maps `event_types`, `import-ids`
accepts `import_kinds`, the checks watch the capped lists, and the history tables (issue 16) keep
the `versioned` ones. A new route or a new kind of record is added here, once; no other module
spells entity names, routes, id rules or kinds.

A leaf: it imports nothing of ours, so every room (the simulator aside) may import it. It sits
next to `settings.py` (env vars, modes, keys) rather than inside it because the two change for
different reasons: settings when deployment does, this when the API does.

Id rules (the one place ids are judged; every door parses with `parse_id`):
- integer ids: 1 .. 2**63-1 (they are BIGINT in the warehouse), given as int or ASCII digits;
- career navigation profile ids: `PROFILE_ID_PATTERN`, a letter then up to 63 letters, digits,
  `_` or `-` (JOFI shows `CNP1234567890` and `CP8ABC123HIJ`). So never `.`, `..`, `/`, spaces or
  anything that could leave its URL path segment, and never all digits (a test taker id given as
  a profile id by mistake).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

IdType = Literal["int", "profile"]
# single: one object per account, read every run. whole: a small list JOFI returns complete.
# capped: only the newest 30-50 records come back, so the warehouse accumulates and looks beyond.
# derived: no list; fetched per test taker when its inputs changed (sync/queries.py).
Listing = Literal["single", "whole", "capped", "derived"]

MAX_INT_ID = 2**63 - 1
MAX_PROFILE_ID_LENGTH = 64
PROFILE_ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_ASCII_DIGITS = re.compile(r"[0-9]+")
ID_RULES: dict[str, str] = {
    "int": f"an integer from 1 to {MAX_INT_ID}",
    "profile": f"a letter followed by up to {MAX_PROFILE_ID_LENGTH - 1} letters, digits, '_' or '-' (e.g. CNP1234567890)",
}


class InvalidIdError(ValueError):
    """An id that breaks its entity's rule; the message says the rule (the value is shortened)."""


class UnknownEntityError(ValueError):
    """A name that is not an entity of the registry; the message lists the known ones."""


def parse_int_id(value: Any, *, what: str = "id") -> int:
    """An integer id (int, or a string of ASCII digits) in 1..2**63-1, or InvalidIdError."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_INT_ID:
        raise InvalidIdError(f"{what} must be {ID_RULES['int']}, got {_shown(value)}")
    return number


def parse_profile_id(value: Any, *, what: str = "career navigation profile id") -> str:
    """A career navigation profile id matching PROFILE_ID_PATTERN (surrounding blanks dropped)."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not PROFILE_ID_PATTERN.fullmatch(text):
        raise InvalidIdError(f"{what} must be {ID_RULES['profile']}, got {_shown(value)}")
    return text


_PARSERS = {"int": parse_int_id, "profile": parse_profile_id}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class ByIdRoute:
    """How one record is read: `GET template` with the id as path parameter `param`.

    `param` is None for a route without an id (the account). `query` names a second key part sent
    as a query parameter (a scorecard is keyed by test taker id and score profile short name `sp`).
    """

    template: str
    param: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class Entity:
    """Everything the pipeline knows about one kind of JOFI record.

    name:          the sync's entity name and the warehouse table's name
    listing:       see `Listing`
    id_type:       the rule of the id its by-id route takes (for derived objects: the test taker's)
    list_route:    the list route, for `whole` and `capped` entities
    by_id:         the route that reads one record, when there is one
    import_kind:   `import-ids --kind` value (hyphenated and underscored spellings are accepted too)
    import_id_aliases: CSV header names besides `id` and the route's parameter that hold the id
    event_types:   webhook event types whose `data.object` is this entity
    fetched_for:   derived entities: the entities whose records decide which of these are fetched
                   (a scorecard per test taker and score profile); the lineage shows them upstream
    open_when:     the lifecycle: while a record can still change and is refreshed by id
    versioned:     mutable records whose changes the history tables keep (issue 16)
    """

    name: str
    listing: Listing
    id_type: IdType
    open_when: str
    versioned: bool
    list_route: str | None = None
    by_id: ByIdRoute | None = None
    import_kind: str | None = None
    import_id_aliases: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    fetched_for: tuple[str, ...] = ()

    @property
    def id_rule(self) -> str:
        """The id rule in words, e.g. 'an integer from 1 to 9223372036854775807'."""
        return ID_RULES[self.id_type]

    def parse_id(self, value: Any) -> int | str:
        """The typed id (int, or str for profiles) or InvalidIdError naming this entity."""
        return _PARSERS[self.id_type](value, what=f"{self.name} id")

    @property
    def list_route_name(self) -> str | None:
        """`GET /test-takers`: how coverage rows and reports name the list."""
        return f"GET {self.list_route}" if self.list_route else None

    @property
    def import_kinds(self) -> tuple[str, ...]:
        """Every accepted `--kind` spelling, the documented one first."""
        if self.import_kind is None:
            return ()
        return tuple(dict.fromkeys((self.import_kind, self.name.replace("_", "-"), self.name)))

    @property
    def import_id_columns(self) -> tuple[str, ...]:
        """CSV header names that hold the id, in order of preference."""
        param = (self.by_id.param,) if self.by_id and self.by_id.param else ()
        return tuple(dict.fromkeys(("id", *param, *self.import_id_aliases)))


_EVERY_RUN = "always: read in full by every run"

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity("account", "single", "int", _EVERY_RUN, versioned=True, by_id=ByIdRoute("/accounts")),
        Entity("users", "whole", "int", _EVERY_RUN, versioned=True, list_route="/users"),
        Entity("teams", "whole", "int", _EVERY_RUN, versioned=True, list_route="/teams"),
        Entity("email_templates", "whole", "int", _EVERY_RUN, versioned=True, list_route="/email-templates"),
        # The catalog is JOFI's reference data (the same real catalog in both modes), not the
        # account's records: read every run, but its rare edits are not history worth keeping.
        Entity("assessments", "whole", "int", _EVERY_RUN, versioned=False, list_route="/assessments"),
        Entity("score_profiles", "whole", "int", _EVERY_RUN, versioned=True, list_route="/score-profiles"),
        Entity(
            "invitations", "capped", "int",
            "until accepted (accepted_at and test_taker_id set); open ones idle for 30 days are "
            "refreshed in a weekly rotation, four-weekly when idle for 180 days",
            versioned=True, list_route="/invitations",
            by_id=ByIdRoute("/invitations/{invitation_id}", "invitation_id"),
            import_kind="invitations", event_types=("invitation.created", "invitation.accepted"),
        ),
        Entity(
            "test_takers", "capped", "int",
            "while an assigned assessment is not completed (open ones idle for 30 days in a weekly "
            "rotation, four-weekly when idle for 180 days), and once when a list names a career "
            "navigation profile it lacks",
            versioned=True, list_route="/test-takers",
            by_id=ByIdRoute("/test-takers/{test_taker_id}", "test_taker_id"),
            import_kind="test-takers", event_types=("test_taker.created", "test_taker.assessment_completed"),
        ),
        Entity(
            "career_navigation_profiles", "capped", "profile",
            "fetched by id when referenced but not held (every held one on a full refresh)",
            versioned=True, list_route="/career-navigation-profiles",
            by_id=ByIdRoute("/career-navigation-profiles/{career_navigation_profile_id}", "career_navigation_profile_id"),
            import_kind="profiles", import_id_aliases=("profile_id",),
            event_types=("career_navigation_profile.created",),
        ),
        Entity(
            "scorecards", "derived", "int",
            "refetched when its test taker's completions of scored assessments or career navigation profile change",
            versioned=True, by_id=ByIdRoute("/test-takers/{test_taker_id}/scorecard", "test_taker_id", query="sp"),
            fetched_for=("test_takers", "score_profiles"),
        ),
        Entity(
            "job_fit_reports", "derived", "int",
            "refetched when its test taker's career navigation profile or completions of scored assessments change",
            versioned=True, by_id=ByIdRoute("/test-takers/{test_taker_id}/job-fit-report", "test_taker_id"),
            fetched_for=("test_takers",),
        ),
    )
}

WHOLE_LISTS: tuple[str, ...] = tuple(n for n, e in ENTITIES.items() if e.listing == "whole")
CAPPED_LISTS: tuple[str, ...] = tuple(n for n, e in ENTITIES.items() if e.listing == "capped")
LISTS: tuple[str, ...] = WHOLE_LISTS + CAPPED_LISTS
# Entities whose ids arrive from outside the lists (webhook events, import-ids) to be fetched by id.
INBOX_ENTITIES: tuple[str, ...] = tuple(n for n, e in ENTITIES.items() if e.import_kind or e.event_types)
VERSIONED: tuple[str, ...] = tuple(n for n, e in ENTITIES.items() if e.versioned)
DERIVED: tuple[str, ...] = tuple(n for n, e in ENTITIES.items() if e.listing == "derived")
ENTITY_OF_EVENT: dict[str, str] = {t: e.name for e in ENTITIES.values() for t in e.event_types}
ENTITY_OF_IMPORT_KIND: dict[str, str] = {k: e.name for e in ENTITIES.values() for k in e.import_kinds}


# Columns that name another record by the id its by-id route takes (`test_taker_id` -> test_takers):
# a value that breaks that entity's id rule is not an id (warehouse/flatten.py stores it as null,
# `_raw` keeps it, and the run reports it as drift), so no plan can ever ask for it.
ID_REFERENCES: dict[str, str] = {
    e.by_id.param: e.name for e in ENTITIES.values() if e.by_id and e.by_id.param and e.listing != "derived"
}


def entity(name: str) -> Entity:
    """The registry record of `name`, or UnknownEntityError listing the known names."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise UnknownEntityError(f"unknown entity {name!r}; known: {', '.join(ENTITIES)}") from None


def parse_id(entity_name: str, value: Any) -> int | str:
    """`value` as the typed id of `entity_name` (int, or str for profiles), or InvalidIdError."""
    return entity(entity_name).parse_id(value)


def is_valid_id(entity_name: str, value: Any) -> bool:
    """Whether `value` keeps the entity's id rule as it is (no blanks to drop, no digits as text)."""
    try:
        return entity(entity_name).parse_id(value) == value
    except InvalidIdError:
        return False


def split_valid(entity_name: str, values: Iterable[Any]) -> tuple[list[int | str], list[Any]]:
    """(the distinct typed ids that keep the rule, in first-seen order; the values that break it)."""
    rule = entity(entity_name)
    valid: dict[int | str, None] = {}
    invalid: list[Any] = []
    for value in values:
        try:
            valid[rule.parse_id(value)] = None
        except InvalidIdError:
            invalid.append(value)
    return list(valid), invalid


def entity_of_import_kind(kind: str) -> Entity:
    """The entity an `import-ids --kind` value names, or ValueError listing the documented kinds."""
    name = ENTITY_OF_IMPORT_KIND.get(kind.strip().lower()) if isinstance(kind, str) else None
    if name is None:
        documented = ", ".join(e.import_kind for e in ENTITIES.values() if e.import_kind)
        raise ValueError(f"unknown kind {kind!r}: use one of {documented}")
    return ENTITIES[name]
