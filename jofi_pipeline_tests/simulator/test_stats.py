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
    assert routes["GET (unmatched)"]["by_status"] == {"404": 1}
    assert stats["total"] == 9 == sum(r["count"] for r in stats["rows"])
    simulator.reset_stats()
    assert simulator.stats()["total"] == 0


def test_faulted_answers_are_counted_with_their_status(simulator, live):
    simulator.set_faults(error_rate=1.0, error_statuses=[503])
    for _ in range(3):
        live.get("/users")
    assert simulator.stats()["routes"]["GET /users"]["by_status"] == {"503": 3}
