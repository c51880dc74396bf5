"""Lists: capped windows are reported as capped; Stripe-style cursors are followed when honoured."""

from __future__ import annotations

import logging

import httpx
import pytest

from jofi_pipeline.api import AuthenticationError, BadRequestError, ClientConfig, ServerError

from .helpers import FAST, LIVE_KEY, Script, error, make_client, ok, page


def cursor_server(all_ids: list, *, honour: bool, window: int = 3):
    """A list route newest-first; pages by starting_after only when `honour`."""

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("starting_after")
        limit = int(request.url.params.get("limit", window))
        start = 0
        if honour and after is not None:
            start = [str(i) for i in all_ids].index(after) + 1
        chunk = all_ids[start : start + min(limit, window)]
        return ok(page(chunk, has_more=start + len(chunk) < len(all_ids), total=len(all_ids)))

    return handler


async def test_cursor_ignored_means_capped_after_one_extra_request():
    script = Script(cursor_server([9, 8, 7, 6, 5], honour=False))
    async with make_client(script) as client:
        result = await client.list("test_takers")
    assert [i["id"] for i in result.items] == [9, 8, 7]
    assert (result.total_count, result.has_more, result.capped, result.pages) == (5, True, True, 2)
    second = script.requests[1].url.params
    assert second["starting_after"] == "7" and second["limit"] == str(FAST.page_limit)
    assert not script.requests[0].url.params


async def test_cursor_honoured_is_followed_to_the_end():
    script = Script(cursor_server(list(range(10, 0, -1)), honour=True))
    async with make_client(script) as client:
        result = await client.list("invitations")
    assert [i["id"] for i in result.items] == list(range(10, 0, -1))
    assert (result.has_more, result.capped, result.pages) == (False, False, 4)


async def test_string_ids_are_used_as_cursors():
    ids = ["CNP5", "CNP4", "CNP3", "CNP2"]
    script = Script(cursor_server(ids, honour=True, window=2))
    async with make_client(script) as client:
        result = await client.list("career_navigation_profiles")
    assert [i["id"] for i in result.items] == ids
    assert script.requests[1].url.params["starting_after"] == "CNP4"


async def test_partially_new_page_keeps_only_new_ids():
    script = Script(ok(page([5, 4, 3], has_more=True, total=6)), ok(page([3, 2, 1], has_more=False, total=6)))
    async with make_client(script) as client:
        result = await client.list("test_takers")
    assert [i["id"] for i in result.items] == [5, 4, 3, 2, 1] and not result.capped


async def test_endless_cursor_is_stopped_by_max_pages():
    counter = iter(range(10**6))

    def handler(request: httpx.Request) -> httpx.Response:
        return ok(page([next(counter)], has_more=True, total=10**6))

    config = ClientConfig(max_pages=5, initial_backoff=0.001)
    async with make_client(handler, config=config) as client:
        result = await client.list("invitations")
    assert (len(result.items), result.pages, result.capped, result.has_more) == (5, 5, True, True)


async def test_has_more_with_empty_page_is_capped():
    script = Script(ok(page([], has_more=True, total=4)))
    async with make_client(script) as client:
        result = await client.list("teams")
    assert result.capped and result.items == [] and script.count == 1


@pytest.mark.parametrize("has_more", [None, "yes", 1])
async def test_has_more_must_be_true_to_follow(has_more):
    body = page([1, 2])
    body["has_more"] = has_more
    script = Script(ok(body))
    async with make_client(script) as client:
        result = await client.list("teams")
    assert script.count == 1 and result.has_more is False


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_cursor_params_refused_on_page_two_keeps_page_one_as_capped(status, caplog):
    caplog.set_level(logging.WARNING, logger="jofi_pipeline.api")
    refused = error(status, "invalid_request_error", "Unknown parameter: starting_after")
    script = Script(ok(page([9, 8, 7], has_more=True, total=5)), refused)
    async with make_client(script) as client:
        result = await client.list("test_takers")
    assert [i["id"] for i in result.items] == [9, 8, 7]
    assert (result.total_count, result.has_more, result.capped) == (5, True, True)
    assert script.count == 2  # a 4xx is not retried
    (record,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "/test-takers" in text and str(status) in text
    assert LIVE_KEY not in text and "http" not in text and "starting_after=" not in text


async def test_page_one_rejection_still_raises():
    script = Script(error(400, "invalid_request_error", "nope"))
    async with make_client(script) as client:
        with pytest.raises(BadRequestError):
            await client.list("test_takers")


@pytest.mark.parametrize(("status", "raised"), [(401, AuthenticationError), (500, ServerError)])
async def test_fatal_or_server_errors_on_page_two_still_raise(status, raised):
    script = Script(ok(page([9, 8, 7], has_more=True, total=5)), error(status, "api_error", "boom"))
    async with make_client(script) as client:
        with pytest.raises(raised):
            await client.list("test_takers")


async def test_on_page_gets_each_pages_new_items_in_order_and_none_are_kept():
    """A run merges a list as it pages (it never holds a long list whole): each page's new items are
    handed on in order, repeats left out, the cursor still follows the last item, nothing is kept."""
    script = Script(ok(page([9, 8, 7], has_more=True, total=7)), ok(page([7, 6, 5], has_more=True, total=7)),
                    ok(page([4, 3], has_more=False, total=7)))
    handed: list[list[int]] = []

    async def on_page(items):
        handed.append([i["id"] for i in items])

    async with make_client(script) as client:
        result = await client.list("invitations", on_page=on_page)
    assert handed == [[9, 8, 7], [6, 5], [4, 3]]
    assert result.items == [] and (result.total_count, result.has_more, result.capped, result.pages) == (7, False, False, 3)
    assert [r.url.params.get("starting_after") for r in script.requests] == [None, "7", "5"]
