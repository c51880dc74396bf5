"""An in-memory JOFI behind httpx.MockTransport, for the sync's unit tests (no simulator process).

It answers the routes of the entity registry with objects shaped by the docs (warehouse/docs_shapes),
caps the capped lists newest first, counts requests per route template and can be told to fail a
route. It is deliberately small: the simulator is the faithful JOFI; this is a fast, scriptable one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.entities import ENTITIES
from jofi_pipeline_tests.warehouse import docs_shapes as docs

BASE_URL = "http://jofi.fake/api/v2"
LIVE_KEY = "sk_live_FakeJofiUnitKey01"
FAST = ClientConfig(initial_backoff=0.001, max_backoff=0.005, max_retries=2, max_concurrency=4)
PROFILES = ("JOFI-295-AS", "JOFI-112-CE")


def _route_patterns() -> list[tuple[re.Pattern[str], str, str]]:
    """(path regex, entity, template) for every list and by-id route of the registry."""
    patterns = []
    for entity in ENTITIES.values():
        if entity.list_route:
            patterns.append((re.compile(re.escape(entity.list_route)), entity.name, entity.list_route))
        if entity.by_id:
            regex = re.escape(entity.by_id.template).replace(re.escape("{" + str(entity.by_id.param) + "}"), "([^/]+)")
            patterns.append((re.compile(regex), entity.name, entity.by_id.template))
    return patterns


class FakeJofi:
    """One account's records; `client()` gives a JofiClient that talks to it."""

    def __init__(self, mode: str = "live", cap: int = 5) -> None:
        self.mode = mode
        self.cap = cap
        self.account = docs.account(mode=mode)
        self.lists: dict[str, list[dict]] = {
            "users": [docs.user()], "teams": [docs.team()], "email_templates": [docs.email_template()],
            "assessments": [docs.assessment(6), docs.assessment(7)],
            "score_profiles": [docs.score_profile(295 + i, sp) for i, sp in enumerate(PROFILES)],
        }
        self.invitations: dict[int, dict] = {}
        self.test_takers: dict[int, dict] = {}
        self.profiles: dict[str, dict] = {}
        self.fail: dict[str, int] = {}  # request path (no base) -> status to answer
        self.counts: Counter[str] = Counter()  # per route template, like the client counts
        self.hook: Callable[[httpx.Request], httpx.Response | None] | None = None
        self._patterns = _route_patterns()

    # -- building the world ------------------------------------------------------------------

    @property
    def owner(self) -> dict:
        """The account reference its records carry (the docs' examples name three accounts; one
        warehouse holds one, and the publish gate refuses rows of another)."""
        return {"id": self.account["id"], "display_name": self.account["display_name"]}

    def add_test_taker(self, test_taker_id: int, *, completed: bool = True, profile: str | None = None,
                       invitation_id: int | None = None) -> dict:
        """A test taker (accepted invitation included), with one assessment completed or not."""
        invitation_id = invitation_id or test_taker_id + 100_000
        done = "2026-02-03T12:50:36.744Z" if completed else None
        taker = docs.test_taker(
            test_taker_id, assignments=[docs.assignment(1, 6), docs.assignment(2, 7, completed_at=done)],
            invitation_id=invitation_id, career_navigation_profile_id=profile, mode=self.mode, account=self.owner,
        )
        self.test_takers[test_taker_id] = taker
        self.add_invitation(invitation_id, accepted_at="2026-02-03T12:43:00Z", test_taker_id=test_taker_id,
                            career_navigation_profile_id=profile)
        if profile:
            self.profiles[profile] = docs.career_navigation_profile(profile, test_taker_id, invitation_id=invitation_id,
                                                                    account=self.owner)
        return taker

    def add_invitation(self, invitation_id: int, **fields: Any) -> dict:
        fields.setdefault("created_at", f"2026-02-{1 + invitation_id % 27:02d}T09:00:00Z")
        invitation = self.invitations[invitation_id] = docs.invitation(invitation_id, mode=self.mode, **fields)
        return invitation

    def complete(self, test_taker_id: int, when: str = "2026-03-01T10:00:00Z") -> None:
        """Every assessment of the test taker completed at `when` (its scorecards' inputs change)."""
        for assignment in self.test_takers[test_taker_id]["assigned_assessments"]:
            assignment["completed_at"] = when

    # -- the HTTP side -------------------------------------------------------------------------

    def client(self, mode: str | None = None, config: ClientConfig = FAST) -> JofiClient:
        key = LIVE_KEY if (mode or self.mode) == "live" else LIVE_KEY.replace("live", "test")
        return JofiClient(key, mode=mode or self.mode, base_url=BASE_URL, config=config,
                          transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v2")
        if self.hook is not None and (answer := self.hook(request)) is not None:
            return answer
        if path == "/healthcheck":
            return httpx.Response(200, json={"status": "ok"})
        for pattern, entity, template in self._patterns:
            match = pattern.fullmatch(path)
            if match:
                self.counts[template] += 1
                if path in self.fail:
                    return self._error(self.fail[path], "injected")
                return self._answer(entity, match.groups()[0] if match.groups() else None, request)
        return self._error(404, f"no route {path}")

    def _answer(self, entity: str, raw_id: str | None, request: httpx.Request) -> httpx.Response:
        if ENTITIES[entity].listing == "single":
            return self._ok(self.account)
        if raw_id is None:
            return self._list(entity)
        if entity == "scorecards":
            sp = request.url.params.get("sp")
            taker = self.test_takers.get(int(raw_id))
            if sp not in PROFILES:
                return self._error(400, f"unknown score profile {sp}")
            return self._ok(docs.scorecard(int(raw_id), sp, mode=self.mode)) if taker else self._error(404, "no test taker")
        if entity == "job_fit_reports":
            taker = self.test_takers.get(int(raw_id))
            if not taker or not taker.get("career_navigation_profile_id"):
                return self._error(404, "no job-fit report yet")
            return self._ok(docs.job_fit_report(int(raw_id), mode=self.mode,
                                                career_navigation_profile_id=taker["career_navigation_profile_id"]))
        record = self._by_id(entity).get(raw_id if entity == "career_navigation_profiles" else int(raw_id))
        return self._ok(record) if record is not None else self._error(404, f"no such {entity}")

    def _by_id(self, entity: str) -> dict:
        return {"invitations": self.invitations, "test_takers": self.test_takers,
                "career_navigation_profiles": self.profiles}[entity]

    def _list(self, entity: str) -> httpx.Response:
        if entity in self.lists:
            items = self.lists[entity]
        else:
            records = self._by_id(entity)
            newest_first = [records[k] for k in sorted(records, reverse=True)]
            items = [_list_item(entity, r) for r in newest_first]
        shown = items if ENTITIES[entity].listing == "whole" else items[: self.cap]
        return self._ok({"object": "list", "total_count": len(items), "has_more": len(shown) < len(items), "data": shown})

    def _ok(self, body: dict) -> httpx.Response:
        return httpx.Response(200, json={**body, "mode": self.mode})

    def _error(self, status: int, message: str) -> httpx.Response:
        return httpx.Response(status, json={"mode": self.mode, "object": "error",
                                            "error": {"type": "api_error" if status >= 500 else "invalid_request_error",
                                                      "message": message}})


def _list_item(entity: str, record: dict) -> dict:
    item = {k: v for k, v in record.items() if k not in ("mode", "assigned_assessments")}
    item["object"] = f"{entity.rstrip('s')}_list_item"
    return item
