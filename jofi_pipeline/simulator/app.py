"""The ASGI application: JOFI's /api/v2 routes plus /_sim/ admin, wrapped in context, stats and faults.

Layers, outermost first: context (route template, key, mode) -> stats -> faults -> Starlette.
All three are plain ASGI callables: Starlette's BaseHTTPMiddleware costs too much per request.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .admin import Admin
from .api import Api, json_response
from .context import ContextMiddleware
from .errors import ApiError, error_body
from .faults import FaultMiddleware
from .state import SimulatorConfig, SimulatorState
from .stats import StatsMiddleware


def _mode_of(request: Request) -> str | None:
    ctx = request.scope.get("jofi")
    return ctx.mode if ctx else None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(error_body(exc.status, exc.message, exc.mode), exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown path, wrong method) in the 8.4 shape."""
    assert isinstance(exc, HTTPException)
    message = {404: "Unrecognized request URL.", 405: f"Method {request.method} is not allowed here."}
    text = message.get(exc.status_code, exc.detail)
    response = json_response(error_body(exc.status_code, text, _mode_of(request)), exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def build_app(config: SimulatorConfig | None = None, state: SimulatorState | None = None):
    state = state or SimulatorState(config or SimulatorConfig())
    api = Api(state)
    routes = [
        Mount("/api/v2", routes=api.routes()),
        Route("/healthcheck", api.healthcheck, methods=["GET"]),
        Mount("/_sim", routes=Admin(state).routes()),
    ]
    starlette = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error})
    starlette.state.simulator = state
    app = ContextMiddleware(StatsMiddleware(FaultMiddleware(starlette, state.faults), state.stats), state.ring)
    app.simulator_state = state  # type: ignore[attr-defined]
    return app
