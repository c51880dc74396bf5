"""Request counts per route template, mode and status."""

from __future__ import annotations

import httpx

from .conftest import get_json


def test_counts_by_template_mode_and_status(simulator, live, test_client):
    takers = get_json(live, "/test-takers")["data"][:3]
    for taker in takers:
        get_json(live, f"/test-takers/{taker['id']}/scorecard", params={"sp": "JOFI-295-AS"})
    live.get(f"/test-takers/{takers[0]['id']}/scorecard")  # 400
    get_json(test_client, "/teams")
    httpx.get(simulator.base_url + "/teams")  # 401
    httpx.get(simulator.base_url + "/healthcheck")
    live.get("/no-such-route")
    simulator.truth("live")  # admin calls are not counted
    stats = simulator.stats()
    routes = stats["routes"]
    card = routes["GET /test-takers/{id}/scorecard"]
    assert card["total"] == 4 and card["by_status"] == {"200": 3, "400": 1} and card["by_mode"] == {"live": 4}
    assert routes["GET /test-takers"]["total"] == 1
    assert routes["GET /teams"]["by_mode"] == {"test": 1, "none": 1}
    assert routes["GET /teams"]["by_status"] == {"200": 1, "401": 1}
    assert routes["GET /healthcheck"]["total"] == 1
    assert routes["GET (unmatched)"]["by_status"] == {"404": 1}  # an admin call counted would land here, 200
    ours = ("GET /test-takers/{id}/scorecard", "GET /test-takers", "GET /teams", "GET /healthcheck", "GET (unmatched)")
    assert sum(routes[name]["total"] for name in ours) == 9
    # The session's simulator is shared by the worker's tests: a request an earlier test left in
    # flight can land after the reset, on a route of its own (CI once counted 10). So every request
    # counted exactly once, in its route and in the rows, rather than 9 in all.
    assert stats["total"] == sum(r["total"] for r in routes.values()) == sum(r["count"] for r in stats["rows"])
    simulator.reset_stats()
    assert simulator.stats()["total"] == 0


def test_faulted_answers_are_counted_with_their_status(simulator, live):
    simulator.set_faults(error_rate=1.0, error_statuses=[503])
    for _ in range(3):
        live.get("/users")
    assert simulator.stats()["routes"]["GET /users"]["by_status"] == {"503": 3}
