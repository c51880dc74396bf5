"""Reading a JOFI list route, today's capped window or tomorrow's Stripe-style pages alike.

JOFI returns only the most recent N items with `has_more` (jofi-api.md 2.0). When `has_more` is
true we ask for the next page with `limit` and `starting_after=<last id>` (8.6): a server that
paginates answers with older items, a server that ignores the cursor answers with the same window
again. No new ids on a page therefore means "capped": we stop and say so, rather than loop. A
server that rejects the cursor params with a 4xx is treated the same way: keep what was read, capped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jofi_pipeline.api.errors import BadRequestError, JofiApiError, NotFoundError, UnexpectedStatusError
from jofi_pipeline.api.transport import BodyShapeError

log = logging.getLogger("jofi_pipeline.api")

FetchPage = Callable[[Mapping[str, Any] | None], Awaitable[dict[str, Any]]]
OnPage = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class ListResult:
    """All items read from one list route, and how complete that is.

    items:       raw item objects, newest first, each exactly as JOFI sent it (deduplicated by id);
                 empty when they were handed to `on_page` page by page instead
    total_count: the API's `total_count` (records in the account), None if it did not say
    has_more:    the last page's `has_more`; true means items exist that we do not hold
    capped:      true when we stopped before `has_more` went false (cursor ignored, or page limit)
    pages:       how many pages (requests) it took
    """

    items: list[dict[str, Any]]
    total_count: int | None
    has_more: bool
    capped: bool
    pages: int


def check_list_envelope(body: dict[str, Any]) -> None:
    """A list body must carry `data` as an array; everything else is optional (new fields are fine)."""
    if not isinstance(body.get("data"), list):
        raise BodyShapeError("has no `data` array (expected a list envelope)")


async def read_list(
    fetch_page: FetchPage, route: str, *, page_limit: int, max_pages: int, on_page: OnPage | None = None
) -> ListResult:
    """Fetch the first page, then follow `starting_after` while the server keeps bringing new ids.

    `on_page`: each page's new items are awaited into it, in order, and not kept (the result's
    `items` is empty), so a long list is never held whole.
    """
    body = await fetch_page(None)
    items = _Items(on_page)
    seen: set[Any] = set()
    await items.add(body["data"], seen)
    total_count = _int_or_none(body.get("total_count"))
    has_more = body.get("has_more") is True
    pages = 1
    capped = False
    while has_more:
        last_id = _last_id(items.last)
        if last_id is None:
            log.warning("GET %s: has_more is true but the last item has no id to continue from; capped", route)
            capped = True
            break
        if pages >= max_pages:
            # One page asked for (the window watcher) is no surprise; a page limit hit mid-list is.
            level = logging.WARNING if max_pages > 1 else logging.DEBUG
            log.log(level, "GET %s: stopped after %d pages with has_more still true; capped", route, pages)
            capped = True
            break
        pages += 1
        try:
            body = await fetch_page({"limit": page_limit, "starting_after": last_id})
        except JofiApiError as exc:
            if not _rejects_cursor(exc):
                raise
            log.warning(
                "GET %s: page %d with limit/starting_after was refused (%s); keeping the %d items read, capped",
                route, pages, exc.status, len(items),
            )
            capped = True
            break
        added = await items.add(body["data"], seen)
        if added == 0:
            log.info(
                "GET %s: next page brought no new ids (server ignores starting_after); "
                "list capped at %d of %s", route, len(items), total_count,
            )
            capped = True
            break
        total_count = _int_or_none(body.get("total_count"), default=total_count)
        has_more = body.get("has_more") is True
    return ListResult(items=items.kept, total_count=total_count, has_more=has_more, capped=capped, pages=pages)


class _Items:
    """The items read so far: kept, or each page's handed to `on_page` (only the last one kept)."""

    def __init__(self, on_page: OnPage | None) -> None:
        self.on_page = on_page
        self.kept: list[dict[str, Any]] = []
        self.last: list[dict[str, Any]] = []  # the last item read, for the next page's cursor
        self.count = 0

    def __len__(self) -> int:
        return self.count

    async def add(self, data: list[Any], seen: set[Any]) -> int:
        page: list[dict[str, Any]] = []
        added = _add_new(data, page, seen)
        if page:
            self.count += added
            self.last = page[-1:]
            if self.on_page is None:
                self.kept.extend(page)
            else:
                await self.on_page(page)
        return added


def _rejects_cursor(exc: JofiApiError) -> bool:
    """A non-fatal 4xx on page 2+: the server refuses our undocumented `limit`/`starting_after`.

    That must not fail the nightly sync; the first page is still a capped window like any other.
    Fatal errors (key, mode), 429s and 5xx still raise.
    """
    rejected = isinstance(exc, (BadRequestError, NotFoundError, UnexpectedStatusError))
    return rejected and not exc.fatal and exc.status is not None and 400 <= exc.status < 500


def _add_new(data: list[Any], items: list[dict[str, Any]], seen: set[Any]) -> int:
    """Append items not seen before (by id; items without an id are always kept). Returns how many."""
    added = 0
    for item in data:
        item_id = item.get("id") if isinstance(item, dict) else None
        if item_id is not None:
            key = (type(item_id).__name__, item_id) if isinstance(item_id, (str, int)) else repr(item_id)
            if key in seen:
                continue
            seen.add(key)
        items.append(item)
        added += 1
    return added


def _last_id(items: list[Any]) -> Any:
    last = items[-1] if items else None
    item_id = last.get("id") if isinstance(last, dict) else None
    return item_id if isinstance(item_id, (str, int)) and not isinstance(item_id, bool) else None


def _int_or_none(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
