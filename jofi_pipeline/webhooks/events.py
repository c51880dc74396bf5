"""What an event means for the sync: which record ids it names (jofi-api.md 4.3 / 4.4).

`parse_body` is the one parser of a webhook body, from bytes to an `Event` or an `EventError`
whose message is safe to return (a 400). Nothing else can come out of it, whatever the bytes:
- UTF-8 only, standard JSON only, nested at most MAX_DEPTH deep (an event is about 6 deep; the
  standard library would need a RecursionError to notice 100 000);
- only live events: webhooks are live-only, so an event or object that says anything but
  `mode: "live"` (exactly), or `livemode` anything but true, is refused; events without either
  field (the documented shape) are live;
- the strings stored next to the body (event id, type, created_at) are plain ASCII of a known
  shape, so storing them can never fail the way an invalid body would (and be retried forever).
Only the `data.object.id` of the documented types (the registry's `event_types`) is taken. An
authenticated, well-formed event of an unknown type is still stored (JOFI may add types) but names
no ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jofi_pipeline import entities, json_codec

MAX_EVENT_ID_LENGTH = 255
MAX_DEPTH = 32
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_\-]{1,%d}" % (MAX_EVENT_ID_LENGTH - 4))
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,4}")
MAX_EVENT_TYPE_LENGTH = 100
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


class EventError(ValueError):
    """An authenticated body that is not a usable event; the message is safe to return."""


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created_at: str | None
    targets: tuple[tuple[str, str], ...]


def valid_id(entity: str, value: Any) -> str | None:
    """The id as stored text if it follows the registry's rule and has the JSON type JOFI sends
    (a number, or a string for profiles: "12" for a test taker is not JOFI's), else None."""
    if (entities.entity(entity).id_type == "int") != (isinstance(value, int) and not isinstance(value, bool)):
        return None
    try:
        return str(entities.parse_id(entity, value))
    except entities.InvalidIdError:
        return None


def parse_body(raw: bytes) -> Event:
    """A webhook body as an Event, or EventError (a 400) saying what is wrong with it."""
    return parse_event(decode_body(raw))


def decode_body(raw: bytes) -> Any:
    """Strict UTF-8, bounded nesting, standard JSON: the body's value, or EventError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EventError("the body is not UTF-8 text") from None
    if nesting(text) > MAX_DEPTH:
        raise EventError(f"the body nests deeper than {MAX_DEPTH} levels; an event is a few levels deep")
    try:
        return json_codec.loads(text)
    except (ValueError, RecursionError):
        raise EventError("the body is not valid JSON") from None


def nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_event(body: Any) -> Event:
    if not isinstance(body, dict):
        raise EventError("the body must be a JSON object (an event envelope)")
    event_id, event_type = body.get("id"), body.get("type")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        raise EventError("the event has no valid id (evt_ followed by letters, digits, '_' or '-')")
    if not isinstance(event_type, str) or len(event_type) > MAX_EVENT_TYPE_LENGTH or not EVENT_TYPE.fullmatch(event_type):
        raise EventError("the event has no valid type (e.g. test_taker.created)")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise EventError("the event has no data.object")
    for where, holder in (("the event", body), ("data.object", obj)):
        not_live = _not_live(holder)
        if not_live:
            raise EventError(
                f"{where} says {not_live}: only live events are accepted (webhooks are live-only; sk_test activity "
                "never produces events, and this receiver stores live events for the live warehouse)"
            )
    created_at = _timestamp(body.get("created_at"))
    entity = entities.ENTITY_OF_EVENT.get(event_type)
    if entity is None:
        return Event(event_id, event_type, created_at, ())
    object_id = valid_id(entity, obj.get("id"))
    if object_id is None:
        raise EventError(f"{event_type} event without a valid data.object.id")
    return Event(event_id, event_type, created_at, ((entity, object_id),))


def _not_live(holder: dict) -> str | None:
    """What a mode marker says when it is not exactly live; None when live or absent."""
    if "mode" in holder and holder["mode"] != "live":
        return f"mode {_shown(holder['mode'])}"
    if "livemode" in holder and holder["livemode"] is not True:
        return f"livemode {_shown(holder['livemode'])}"
    return None


def _timestamp(value: Any) -> str | None:
    """`created_at` kept only when it is an ISO-8601 timestamp in ASCII (else None: the body keeps it)."""
    if not isinstance(value, str) or len(value) > 40 or not value.isascii():
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _shown(value: Any) -> str:
    text = json_codec.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
