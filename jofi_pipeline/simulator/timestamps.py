"""JOFI-style timestamps: ISO-8601 strings with 3, 5 or 6 fractional digits and `+00:00`.

The real API trims fractional digits inconsistently (see jofi-api.md 2.0), so every stored
timestamp picks a precision and keeps it; parsers on the other side must cope.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

PRECISIONS = (3, 5, 6)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_ts(moment: datetime, digits: int) -> str:
    """Render `moment` (UTC) with exactly `digits` fractional digits."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}"[:digits]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + "." + fraction + "+00:00"


def stamp(moment: datetime, rng: random.Random) -> str:
    """A timestamp string for `moment`, with a precision drawn from `rng`."""
    return format_ts(moment, rng.choice(PRECISIONS))
