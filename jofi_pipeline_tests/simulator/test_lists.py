"""Capped lists: newest first, total_count, has_more; paging params ignored unless cursor mode."""

from __future__ import annotations

import pytest

from .conftest import client, get_json

CAPPED = {"/test-takers": 30, "/career-navigation-profiles": 50, "/invitations": 50}
TRUTH_KEY = {"/test-takers": "test_takers", "/career-navigation-profiles": "career_navigation_profiles", "/invitations": "invitations"}
ORDER_FIELD = {"/test-takers": None, "/career-navigation-profiles": None, "/invitations": "created_at"}


@pytest.mark.parametrize("path", list(CAPPED))
def test_capped_window_is_the_newest_records(simulator, mode_client, path):
    mode, c = mode_client
    truth = simulator.truth(mode)[TRUTH_KEY[path]]
    assert len(truth) > CAPPED[path], "the world must be larger than the cap for this test to mean anything"
    body = get_json(c, path)
    assert body["total_count"] == len(truth)
    assert body["has_more"] is True
    assert [item["id"] for item in body["data"]] == [t["id"] for t in truth[: CAPPED[path]]]


def test_invitations_are_newest_first(live):
    created = [i["created_at"] for i in get_json(live, "/invitations")["data"]]
    assert created == sorted(created, reverse=True)


def test_test_takers_are_newest_first_by_acceptance(simulator, live):
    accepted = {i["test_taker_id"]: i["accepted_at"] for i in simulator.truth("live")["invitations"] if i["test_taker_id"]}
    order = [accepted[t["id"]] for t in get_json(live, "/test-takers")["data"]]
    assert order == sorted(order, reverse=True)


def test_small_lists_are_whole(mode_client):
    _, c = mode_client
    for path in ("/users", "/teams", "/email-templates", "/assessments", "/score-profiles"):
        body = get_json(c, path)
        assert body["has_more"] is False and body["total_count"] == len(body["data"])


def test_default_mode_ignores_paging_params(live):
    first = get_json(live, "/test-takers")
    paged = get_json(live, "/test-takers", params={"limit": 5, "starting_after": first["data"][-1]["id"]})
    assert paged == first
    assert get_json(live, "/invitations", params={"limit": "junk"}) == get_json(live, "/invitations")


def test_cursor_mode_walks_the_whole_list(make_simulator):
    sim = make_simulator(pagination="cursor", test_takers=80)
    truth = sim.truth("live")
    with client(sim, "live") as c:
        for path in CAPPED:
            seen, after = [], None
            while True:
                params = {"limit": 7} | ({"starting_after": after} if after else {})
                page = get_json(c, path, params=params)
                assert len(page["data"]) <= 7
                seen += [item["id"] for item in page["data"]]
                if not page["has_more"]:
                    break
                after = page["data"][-1]["id"]
            assert seen == [t["id"] for t in truth[TRUTH_KEY[path]]], path
        default = get_json(c, "/test-takers")
        assert len(default["data"]) == 30 and default["has_more"], "cursor mode keeps the cap as the default page size"
        for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"starting_after": "999"}):
            error = get_json(c, "/test-takers", status=400, params=bad)
            assert error["error"]["type"] == "invalid_request_error"
