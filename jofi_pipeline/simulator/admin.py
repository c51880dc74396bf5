"""`/_sim/` routes: not JOFI's — the test harness's handles on the clock, counters and faults."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import views
from .activity import advance
from .state import SimulatorState
from .webhooks import admin_routes as webhook_routes
from .world import World

MAX_ADVANCE_DAYS = 3650
ADVANCE_LIMITS = {"days": MAX_ADVANCE_DAYS, "hours": 24 * MAX_ADVANCE_DAYS}
USAGE = 'send one of ?days=N or ?hours=N (or a JSON body {"days": N} or {"hours": N})'


def truth(world: World, mode: str) -> dict:
    """The whole world, uncapped, each record as its GET-by-id route answers (lists: as list items)."""

    def newest(records):
        return sorted(records, key=lambda r: (r.created_at.at, str(r.id)), reverse=True)

    return {
        "mode": mode,
        "now": world.now.isoformat(),
        "account": views.with_mode(mode, views.account(world)),
        "users": views.users(world),
        "teams": views.teams(world),
        "email_templates": views.email_templates(world),
        "assessments": views.assessments(),
        "score_profiles": views.score_profiles(),
        "invitations": [views.with_mode(mode, views.invitation(world, i)) for i in newest(world.invitations.values())],
        "test_takers": [views.with_mode(mode, views.test_taker(world, t)) for t in newest(world.test_takers.values())],
        "career_navigation_profiles": [
            views.with_mode(mode, views.career_navigation_profile(world, p)) for p in newest(world.profiles.values())
        ],
    }


def _problem(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"object": "error", "error": {"type": "invalid_request_error", "message": message}}, status)


class Admin:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def advance(self, request: Request) -> Response:
        """`?days=N` or `?hours=N` (or a JSON body with one of them); nothing given = one day."""
        given = {unit: request.query_params.get(unit) for unit in ADVANCE_LIMITS}
        given = {unit: raw for unit, raw in given.items() if raw is not None}
        if not given:
            body = await request.body()
            try:
                sent = json.loads(body) if body else {"days": 1}
                given = {unit: str(sent[unit]) for unit in ADVANCE_LIMITS if unit in sent}
            except (ValueError, TypeError, AttributeError):
                return _problem(USAGE)
        if len(given) != 1:
            return _problem(USAGE)
        ((unit, raw),) = given.items()
        if not raw.isdigit() or int(raw) > ADVANCE_LIMITS[unit]:
            return _problem(f"{unit} must be an integer between 0 and {ADVANCE_LIMITS[unit]}")
        hours = int(raw) * (24 if unit == "days" else 1)
        return JSONResponse(advance(self.state.worlds["live"], hours))

    async def stats(self, request: Request) -> Response:
        snapshot = self.state.stats.snapshot()
        snapshot["faults_fired"] = dict(self.state.faults.fired)
        return JSONResponse(snapshot)

    async def reset_stats(self, request: Request) -> Response:
        self.state.stats.reset()
        return JSONResponse({"reset": True})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.state.faults.describe())

    async def merge_faults(self, request: Request) -> Response:
        try:
            update = json.loads(await request.body() or b"{}")
            if not isinstance(update, dict):
                raise ValueError("send a JSON object of fault settings")
            self.state.faults.merge(update)
        except ValueError as exc:
            return _problem(str(exc))
        return JSONResponse(self.state.faults.describe())

    async def clear_faults(self, request: Request) -> Response:
        self.state.faults.clear()
        return JSONResponse(self.state.faults.describe())

    async def truth(self, request: Request) -> Response:
        mode = request.query_params.get("mode", "live")
        if mode not in self.state.worlds:
            return _problem("mode must be live or test")
        return JSONResponse(truth(self.state.worlds[mode], mode))

    async def info(self, request: Request) -> Response:
        config = self.state.config
        live = self.state.worlds["live"]
        return JSONResponse(
            {
                "seed": config.seed,
                "test_takers": config.test_takers,
                "test_world_test_takers": config.test_world_test_takers,
                "pagination": config.pagination,
                "now": live.now.isoformat(),
                "live_key": config.live_key,
                "test_key": config.test_key,
            }
        )

    async def reset_world(self, request: Request) -> Response:
        """Rebuild both worlds from the start options; also clears stats and faults."""
        self.state.reset()
        return JSONResponse({"reset": True, "now": self.state.worlds["live"].now.isoformat()})

    def routes(self) -> list[Route]:
        return [
            Route("/advance", self.advance, methods=["POST"]),
            Route("/stats", self.stats, methods=["GET"]),
            Route("/stats/reset", self.reset_stats, methods=["POST"]),
            Route("/faults", self.get_faults, methods=["GET"]),
            Route("/faults", self.merge_faults, methods=["POST", "PATCH", "PUT"]),
            Route("/faults", self.clear_faults, methods=["DELETE"]),
            Route("/truth", self.truth, methods=["GET"]),
            Route("/info", self.info, methods=["GET"]),
            Route("/reset", self.reset_world, methods=["POST"]),
            *webhook_routes(lambda: self.state.webhooks),
        ]
