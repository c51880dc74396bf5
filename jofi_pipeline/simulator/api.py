"""The JOFI API v2 routes (section 8): auth, mode, lists, objects, scorecards, writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import views
from .auth import authenticate
from .catalog import SCORE_PROFILES
from .errors import ApiError, bad_request, not_found
from .listing import CAPS, capped_page, whole
from .models import TestTaker
from .state import SimulatorState
from .world import World
from .writes import create_invitation, parse_json_object, updated_invitation

JSON = "application/json"
HEALTHY = b'{"status":"ok"}'


# Dataclasses and datetimes are not JSON: refused (then refused again below), as the standard
# library always did, so a view returning a model object fails loudly instead of inventing a shape.
_ENCODE_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def encode(obj: object) -> bytes:
    """Compact UTF-8 JSON. orjson writes the same bytes as the standard library for the records
    served here, ~13× faster (a scorecard: ~2 µs against ~25 µs); what orjson refuses (an integer
    past 64 bits, a lone surrogate, a non-string key) gets the standard library's answer, as before.
    Two differences no record reaches (every float served is rounded, 0–10): NaN and infinities
    become null, and a float's exponent is written without padding (`1e-5`, not `1e-05`)."""
    try:
        return orjson.dumps(obj, option=_ENCODE_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON)


def parse_int_id(raw: str, what: str, mode: str) -> int:
    """Integer path ids are plain decimal; anything else cannot name a record, hence 404."""
    if not raw.isdigit() or raw != str(int(raw)):
        raise not_found(what, raw, mode)
    return int(raw)


class Api:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._sorted: dict[tuple[str, str], tuple[int, list]] = {}

    # ---- plumbing -------------------------------------------------------------------------

    def _auth(self, request: Request) -> tuple[str, World]:
        ctx = request.scope.get("jofi")
        mode = authenticate(ctx.key if ctx else None, self.state.ring)
        return mode, self.state.worlds[mode]

    def _cached(self, request: Request, world: World, render: Callable[[], object], with_query: bool = False) -> Response:
        cache = self.state.cache
        key = (request.scope["path"], request.scope["query_string"] if with_query else b"")
        body = cache.get(world, key)
        if body is None:
            body = encode(render())
            cache.put(world, key, body)
        return json_response(body)

    def _newest_first(self, world: World, kind: str) -> list:
        """Records newest first, re-sorted only when the world changed."""
        cached = self._sorted.get((world.kind, kind))
        if cached and cached[0] == world.version:
            return cached[1]
        records = {"invitations": world.invitations, "test_takers": world.test_takers, "profiles": world.profiles}[kind]
        ordered = sorted(records.values(), key=lambda r: (r.created_at.at, str(r.id)), reverse=True)
        self._sorted[(world.kind, kind)] = (world.version, ordered)
        return ordered

    def _list(self, request: Request, mode: str, world: World, kind: str, cap: int, render: Callable) -> Response:
        cursor = self.state.cursor_pagination
        query = dict(request.query_params) if cursor else None
        records = self._newest_first(world, kind)
        return self._cached(request, world, lambda: capped_page(mode, records, lambda r: r.id, render, cap, query), with_query=cursor)

    @staticmethod
    def _found(records: dict, raw_id: str, what: str, mode: str, *, int_id: bool = True) -> Any:
        """The record a path id names, or the API's 404 (also for ids that cannot name one)."""
        record = records.get(parse_int_id(raw_id, what, mode) if int_id else raw_id)
        if record is None:
            raise not_found(what, raw_id, mode)
        return record

    def _capped_list(self, kind: str, cap: int, view: Callable) -> Callable:
        """The route of one capped list, each record as `view` renders a list item."""

        async def endpoint(request: Request) -> Response:
            mode, world = self._auth(request)
            return self._list(request, mode, world, kind, cap, lambda record: view(world, record, item=True))

        return endpoint

    def _by_id(self, records: Callable[[World], dict], what: str, view: Callable, *, int_id: bool = True) -> Callable:
        """The GET-by-id route of one kind of record, rendered by `view`."""

        async def endpoint(request: Request) -> Response:
            mode, world = self._auth(request)
            record = self._found(records(world), request.path_params["id"], what, mode, int_id=int_id)
            return self._cached(request, world, lambda: views.with_mode(mode, view(world, record)))

        return endpoint

    def _taker(self, world: World, raw_id: str, mode: str) -> TestTaker:
        return self._found(world.test_takers, raw_id, "test taker", mode)

    # ---- routes ---------------------------------------------------------------------------

    async def healthcheck(self, request: Request) -> Response:
        return json_response(HEALTHY)

    async def accounts(self, request: Request) -> Response:
        mode, world = self._auth(request)
        return self._cached(request, world, lambda: views.with_mode(mode, views.account(world)))

    async def users(self, request: Request) -> Response:
        mode, world = self._auth(request)
        return self._cached(request, world, lambda: whole(mode, views.users(world)))

    async def teams(self, request: Request) -> Response:
        mode, world = self._auth(request)
        return self._cached(request, world, lambda: whole(mode, views.teams(world)))

    async def email_templates(self, request: Request) -> Response:
        mode, world = self._auth(request)
        return self._cached(request, world, lambda: whole(mode, views.email_templates(world)))

    async def assessments(self, request: Request) -> Response:
        mode, world = self._auth(request)  # the real catalog in both modes; only `mode` differs
        return self._cached(request, world, lambda: whole(mode, views.assessments()))

    async def score_profiles(self, request: Request) -> Response:
        mode, world = self._auth(request)
        return self._cached(request, world, lambda: whole(mode, views.score_profiles()))

    async def create_invitation(self, request: Request) -> Response:
        mode, world = self._auth(request)
        body = parse_json_object(await request.body(), mode)
        live = mode == "live"
        inviter_worlds = [world] if live else [world, self.state.worlds["live"]]
        invitation = create_invitation(world, body, mode, inviter_worlds, store=live)
        if live:
            world.touch()
        return json_response(encode(views.with_mode(mode, views.invitation(world, invitation))), 201)

    async def update_invitation(self, request: Request) -> Response:
        mode, world = self._auth(request)
        current = self._found(world.invitations, request.path_params["id"], "invitation", mode)
        body = parse_json_object(await request.body(), mode)
        updated = updated_invitation(world, current, body, mode)
        if mode == "live":
            world.invitations[updated.id] = updated
            world.touch()
        return json_response(encode(views.with_mode(mode, views.invitation(world, updated))))

    async def scorecard(self, request: Request) -> Response:
        mode, world = self._auth(request)
        taker = self._taker(world, request.path_params["id"], mode)
        sp = request.query_params.get("sp")
        if not sp:
            raise bad_request("Missing required query parameter: sp (a score profile short_name).", mode)
        profile = next((p for p in SCORE_PROFILES if p.short_name == sp), None)
        if profile is None:
            raise bad_request(f"Invalid sp {sp!r}: use a short_name from GET /score-profiles.", mode)
        render = lambda: views.with_mode(mode, views.scorecard(world, taker, profile))  # noqa: E731
        return self._cached(request, world, render, with_query=True)

    async def job_fit_report(self, request: Request) -> Response:
        mode, world = self._auth(request)
        taker = self._taker(world, request.path_params["id"], mode)
        if taker.career_navigation_profile_id is None:
            raise ApiError(404, "This test taker has no career navigation profile yet, so no job-fit report.", mode)
        return self._cached(request, world, lambda: views.with_mode(mode, views.job_fit_report(world, taker)))

    def routes(self) -> list[Route]:
        profile = views.career_navigation_profile
        table = [
            ("/healthcheck", self.healthcheck, ["GET"]),
            ("/accounts", self.accounts, ["GET"]),
            ("/users", self.users, ["GET"]),
            ("/teams", self.teams, ["GET"]),
            ("/email-templates", self.email_templates, ["GET"]),
            ("/assessments", self.assessments, ["GET"]),
            ("/score-profiles", self.score_profiles, ["GET"]),
            ("/invitations", self._capped_list("invitations", CAPS["invitations"], views.invitation), ["GET"]),
            ("/invitations", self.create_invitation, ["POST"]),
            ("/invitations/{id}", self._by_id(lambda w: w.invitations, "invitation", views.invitation), ["GET"]),
            ("/invitations/{id}", self.update_invitation, ["PUT"]),
            ("/test-takers", self._capped_list("test_takers", CAPS["test-takers"], views.test_taker), ["GET"]),
            ("/test-takers/{id}", self._by_id(lambda w: w.test_takers, "test taker", views.test_taker), ["GET"]),
            ("/test-takers/{id}/scorecard", self.scorecard, ["GET"]),
            ("/test-takers/{id}/job-fit-report", self.job_fit_report, ["GET"]),
            ("/career-navigation-profiles", self._capped_list("profiles", CAPS["career-navigation-profiles"], profile), ["GET"]),
            (
                "/career-navigation-profiles/{id}",
                self._by_id(lambda w: w.profiles, "career navigation profile", profile, int_id=False),
                ["GET"],
            ),
        ]
        return [Route(path, endpoint, methods=methods) for path, endpoint, methods in table]
