"""Every READ route hits its path, and no data passes without the client's own `mode`."""

from __future__ import annotations

import httpx
import pytest

from jofi_pipeline.api import MalformedResponseError, ModeMismatchError

from .helpers import Script, TEST_KEY, make_client, ok, page

SINGLE = {
    "account": ((), "/api/v2/accounts", {}),
    "invitation": ((12345,), "/api/v2/invitations/12345", {}),
    "test_taker": ((2345623456,), "/api/v2/test-takers/2345623456", {}),
    "scorecard": ((12345, "JOFI-295-AS"), "/api/v2/test-takers/12345/scorecard", {"sp": "JOFI-295-AS"}),
    "job_fit_report": ((12345,), "/api/v2/test-takers/12345/job-fit-report", {}),
    "career_navigation_profile": (("CP1ABC/234",), "/api/v2/career-navigation-profiles/CP1ABC%2F234", {}),
}
LISTS = {
    "users": "/api/v2/users",
    "teams": "/api/v2/teams",
    "email_templates": "/api/v2/email-templates",
    "assessments": "/api/v2/assessments",
    "score_profiles": "/api/v2/score-profiles",
    "invitations": "/api/v2/invitations",
    "test_takers": "/api/v2/test-takers",
    "career_navigation_profiles": "/api/v2/career-navigation-profiles",
}


@pytest.mark.parametrize("method", sorted(SINGLE))
async def test_single_object_routes(method):
    args, path, params = SINGLE[method]
    body = {"mode": "test", "object": "whatever", "id": 1, "nullable": None}
    script = Script(ok(body))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        assert await getattr(client, method)(*args) == body
    (request,) = script.requests
    assert request.method == "GET" and request.url.raw_path.decode().split("?")[0] == path
    assert dict(request.url.params) == params


@pytest.mark.parametrize("method", sorted(LISTS))
async def test_list_routes(method):
    script = Script(ok(page([3, 2, 1], mode="test")))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        result = await getattr(client, method)()
    assert [item["id"] for item in result.items] == [3, 2, 1]
    assert (result.total_count, result.has_more, result.capped, result.pages) == (3, False, False, 1)
    assert script.requests[0].url.path == LISTS[method] and not script.requests[0].url.params


@pytest.mark.parametrize("bad_id", [True, 1.5, None, "abc", ""])
async def test_integer_ids_are_checked_before_any_request(bad_id):
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        with pytest.raises((TypeError, ValueError)):
            await client.test_taker(bad_id)
    assert script.count == 0


@pytest.mark.parametrize(
    ("body", "actual"),
    [({"mode": "test", "object": "account"}, "test"), ({"object": "account"}, None), ({"mode": None}, None)],
)
async def test_object_with_wrong_or_missing_mode_is_refused_and_not_retried(body, actual):
    script = Script(ok(body))
    async with make_client(script) as client:
        with pytest.raises(ModeMismatchError) as info:
            await client.account()
    assert script.count == 1
    err = info.value
    assert (err.expected, err.actual, err.route, err.fatal) == ("live", actual, "/accounts", True)
    assert "live mode" in str(err) and "JOFI_LIVE_API_KEY" in str(err)


async def test_list_with_wrong_mode_is_refused():
    script = Script(ok(page([1, 2], mode="live")))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        with pytest.raises(ModeMismatchError):
            await client.test_takers()


async def test_mode_mismatch_on_a_later_page_is_refused_too():
    script = Script(ok(page([3, 2], has_more=True, total=4)), ok(page([1], mode="test")))
    async with make_client(script) as client:
        with pytest.raises(ModeMismatchError):
            await client.invitations()


async def test_list_without_data_array_is_retried_then_malformed():
    script = Script(ok({"mode": "live", "object": "list", "data": None}))
    async with make_client(script) as client:
        with pytest.raises(MalformedResponseError, match="data"):
            await client.teams()
    assert script.count > 1


async def test_list_items_are_kept_raw_whatever_their_shape():
    body = {"mode": "live", "object": "list", "data": [{"id": 1, "new": {"deep": [None]}}, {"no_id": True}, "odd"]}
    script = Script(ok(body))
    async with make_client(script) as client:
        result = await client.users()
    assert result.items == body["data"] and result.total_count is None and result.has_more is False


async def test_never_posts_or_puts():
    script = Script(ok(page([])))
    async with make_client(script) as client:
        assert not any(hasattr(client, name) for name in ("create_invitation", "update_invitation", "post", "put"))
        await client.invitations()
    assert {r.method for r in script.requests} == {"GET"}


async def test_transport_is_closed_by_the_context_manager():
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        await client.account()
    with pytest.raises(RuntimeError):
        await client.account()
