"""Every READ route hits its path, and no data passes without the client's own `mode`."""

from __future__ import annotations

import httpx
import pytest

from jofi_pipeline.api import InvalidIdError, MalformedResponseError, ModeMismatchError
from jofi_pipeline.entities import ENTITIES

from .helpers import Script, TEST_KEY, make_client, ok, page

SINGLE = {
    "account": (None, "/api/v2/accounts", {}),
    "invitations": (12345, "/api/v2/invitations/12345", {}),
    "test_takers": (2345623456, "/api/v2/test-takers/2345623456", {}),
    "scorecards": ((12345, "JOFI-295-AS"), "/api/v2/test-takers/12345/scorecard", {"sp": "JOFI-295-AS"}),
    "job_fit_reports": (12345, "/api/v2/test-takers/12345/job-fit-report", {}),
    "career_navigation_profiles": ("CP1ABC_234-x", "/api/v2/career-navigation-profiles/CP1ABC_234-x", {}),
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


def test_the_paths_above_cover_every_route_of_the_registry():
    """Written out by hand (not derived) so that a registry edit that moves a route fails here."""
    assert set(SINGLE) == {e.name for e in ENTITIES.values() if e.by_id}
    assert set(LISTS) == {e.name for e in ENTITIES.values() if e.list_route}


@pytest.mark.parametrize("entity", sorted(SINGLE))
async def test_single_object_routes(entity):
    key, path, params = SINGLE[entity]
    body = {"mode": "test", "object": "whatever", "id": 1, "nullable": None}
    script = Script(ok(body))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        assert await client.get(entity, key) == body
    (request,) = script.requests
    assert request.method == "GET" and request.url.raw_path.decode().split("?")[0] == path
    assert dict(request.url.params) == params


@pytest.mark.parametrize("entity", sorted(LISTS))
async def test_list_routes(entity):
    script = Script(ok(page([3, 2, 1], mode="test")))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        result = await client.list(entity)
    assert [item["id"] for item in result.items] == [3, 2, 1]
    assert (result.total_count, result.has_more, result.capped, result.pages) == (3, False, False, 1)
    assert script.requests[0].url.path == LISTS[entity] and not script.requests[0].url.params


@pytest.mark.parametrize("bad_id", [True, 1.5, None, "abc", "", 0, -1, 2**63, "9" * 30, "\u0661\u0662", " "])
async def test_integer_ids_are_checked_before_any_request(bad_id):
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        with pytest.raises(InvalidIdError) as info:
            await client.get("test_takers", bad_id)
    assert script.count == 0
    assert not info.value.fatal and "no request was sent" in str(info.value)


@pytest.mark.parametrize("bad_id", ["..", ".", "CP1/../x", "CP1/234", "has space", "12345", "", "C" * 65, "CNP\u00e9", 12])
async def test_profile_ids_that_could_leave_their_path_segment_are_refused(bad_id):
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        with pytest.raises(InvalidIdError):
            await client.get("career_navigation_profiles", bad_id)
    assert script.count == 0


@pytest.mark.parametrize(("entity", "key"), [("account", 1), ("scorecards", 12345), ("scorecards", (12345, ""))])
async def test_keys_of_the_wrong_shape_are_refused_before_any_request(entity, key):
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        with pytest.raises(InvalidIdError):
            await client.get(entity, key)
    assert script.count == 0


async def test_entities_without_such_a_route_or_unknown_names_are_refused():
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        for call in (client.list("account"), client.get("users", 1), client.list("nope"), client.get("nope", 1)):
            with pytest.raises(ValueError):
                await call
    assert script.count == 0


@pytest.mark.parametrize(
    ("body", "actual"),
    [({"mode": "test", "object": "account"}, "test"), ({"object": "account"}, None), ({"mode": None}, None)],
)
async def test_object_with_wrong_or_missing_mode_is_refused_and_not_retried(body, actual):
    script = Script(ok(body))
    async with make_client(script) as client:
        with pytest.raises(ModeMismatchError) as info:
            await client.get("account")
    assert script.count == 1
    err = info.value
    assert (err.expected, err.actual, err.route, err.fatal) == ("live", actual, "/accounts", True)
    assert "live mode" in str(err) and "JOFI_LIVE_API_KEY" in str(err)


async def test_list_with_wrong_mode_is_refused():
    script = Script(ok(page([1, 2], mode="live")))
    async with make_client(script, key=TEST_KEY, mode="test") as client:
        with pytest.raises(ModeMismatchError):
            await client.list("test_takers")


async def test_mode_mismatch_on_a_later_page_is_refused_too():
    script = Script(ok(page([3, 2], has_more=True, total=4)), ok(page([1], mode="test")))
    async with make_client(script) as client:
        with pytest.raises(ModeMismatchError):
            await client.list("invitations")


async def test_list_without_data_array_is_retried_then_malformed():
    script = Script(ok({"mode": "live", "object": "list", "data": None}))
    async with make_client(script) as client:
        with pytest.raises(MalformedResponseError, match="data"):
            await client.list("teams")
    assert script.count > 1


async def test_list_items_are_kept_raw_whatever_their_shape():
    body = {"mode": "live", "object": "list", "data": [{"id": 1, "new": {"deep": [None]}}, {"no_id": True}, "odd"]}
    script = Script(ok(body))
    async with make_client(script) as client:
        result = await client.list("users")
    assert result.items == body["data"] and result.total_count is None and result.has_more is False


async def test_never_posts_or_puts():
    script = Script(ok(page([])))
    async with make_client(script) as client:
        assert not any(hasattr(client, name) for name in ("create_invitation", "update_invitation", "post", "put"))
        await client.list("invitations")
    assert {r.method for r in script.requests} == {"GET"}


async def test_transport_is_closed_by_the_context_manager():
    script = Script(ok({"mode": "live"}))
    async with make_client(script) as client:
        await client.get("account")
    with pytest.raises(RuntimeError):
        await client.get("account")
