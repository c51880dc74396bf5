"""The list envelope, the "most recent N" caps, and the optional Stripe-style cursor (section 8.6)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import bad_request

CAPS = {"test-takers": 30, "career-navigation-profiles": 50, "invitations": 50}
MAX_LIMIT = 100


def envelope(mode: str, items: list[dict], total: int, has_more: bool) -> dict:
    return {"mode": mode, "object": "list", "total_count": total, "has_more": has_more, "data": items}


def whole(mode: str, items: list[dict]) -> dict:
    return envelope(mode, items, len(items), False)


def capped_page(
    mode: str,
    records: Sequence[Any],
    id_of: Callable[[Any], Any],
    render: Callable[[Any], dict],
    cap: int,
    query: dict[str, str] | None,
) -> dict:
    """Newest-first `records` cut to a page.

    `query` is None when the server ignores paging parameters (the documented behaviour: only the
    most recent `cap` items); otherwise `limit` and `starting_after` are honoured.
    """
    start, size = 0, cap
    if query is not None:
        size = _limit(query.get("limit"), cap, mode)
        after = query.get("starting_after")
        if after is not None:
            position = next((i for i, r in enumerate(records) if str(id_of(r)) == after), None)
            if position is None:
                raise bad_request(f"starting_after: no such object {after!r} in this list", mode)
            start = position + 1
    page = records[start : start + size]
    return envelope(mode, [render(r) for r in page], len(records), start + size < len(records))


def _limit(raw: str | None, default: int, mode: str) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request(f"limit must be an integer between 1 and {MAX_LIMIT}", mode)
    return int(raw)
