"""What an event means for the sync: which record ids it names (jofi-api.md 4.3 / 4.4).

Only the `data.object.id` of the documented types (the registry's `event_types`) is taken. An
authenticated, well-formed event of an unknown type is still stored (JOFI may add types) but names
no ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jofi_pipeline import entities

MAX_EVENT_ID_LENGTH = 255


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


def parse_event(body: Any) -> Event:
    if not isinstance(body, dict):
        raise EventError("the body must be a JSON object (an event envelope)")
    event_id, event_type = body.get("id"), body.get("type")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > MAX_EVENT_ID_LENGTH:
        raise EventError("the event has no valid id (a string starting with evt_)")
    if not isinstance(event_type, str) or not event_type:
        raise EventError("the event has no type")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise EventError("the event has no data.object")
    if "test" in (body.get("mode"), obj.get("mode")):
        raise EventError(
            "test-mode event refused: webhooks are live-only (sk_test activity never produces events; "
            "this receiver stores live events for the live warehouse)"
        )
    created_at = body.get("created_at") if isinstance(body.get("created_at"), str) else None
    entity = entities.ENTITY_OF_EVENT.get(event_type)
    if entity is None:
        return Event(event_id, event_type, created_at, ())
    object_id = valid_id(entity, obj.get("id"))
    if object_id is None:
        raise EventError(f"{event_type} event without a valid data.object.id")
    return Event(event_id, event_type, created_at, ((entity, object_id),))
