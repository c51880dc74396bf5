"""What every layer wants to know about a request: route template, presented key, mode.

Worked out once, at the outermost layer, and kept in `scope["jofi"]`; stats and faults read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .auth import KeyRing, presented_key

API_PREFIX = "/api/v2"

# Route templates as the stats report them (method + path under /api/v2, ids as {id}).
ROUTE_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("GET", "/healthcheck"),
    ("GET", "/accounts"),
    ("GET", "/users"),
    ("GET", "/teams"),
    ("GET", "/email-templates"),
    ("GET", "/assessments"),
    ("GET", "/score-profiles"),
    ("GET", "/invitations"),
    ("POST", "/invitations"),
    ("GET", "/invitations/{id}"),
    ("PUT", "/invitations/{id}"),
    ("GET", "/test-takers"),
    ("GET", "/test-takers/{id}"),
    ("GET", "/test-takers/{id}/scorecard"),
    ("GET", "/test-takers/{id}/job-fit-report"),
    ("GET", "/career-navigation-profiles"),
    ("GET", "/career-navigation-profiles/{id}"),
)
_COMPILED = [
    (method, template, re.compile("^" + template.replace("{id}", "[^/]+") + "/?$")) for method, template in ROUTE_TEMPLATES
]
UNMATCHED = "(unmatched)"


@dataclass(slots=True)
class RequestContext:
    template: str  # e.g. "GET /test-takers/{id}/scorecard"
    key: str | None
    mode: str | None  # "live" / "test" for a key the account owns, else None
    path: str = ""  # the path under /api/v2, e.g. "/test-takers/12" (faults aimed at ids read it)
    abandoned: bool = False  # the client gave up on a hung request (faults set it, stats count it)

    @property
    def is_healthcheck(self) -> bool:
        return self.template == "GET /healthcheck"


def route_template(method: str, api_path: str) -> str:
    for route_method, template, pattern in _COMPILED:
        if pattern.match(api_path):
            if route_method == method:
                return f"{method} {template}"
    return f"{method} {UNMATCHED}"


def context_for(scope: dict, ring: KeyRing) -> RequestContext | None:
    """A context for API requests (and the root healthcheck); None for /_sim/ and the rest."""
    path: str = scope["path"]
    if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
        api_path = path[len(API_PREFIX) :] or "/"
    elif path == "/healthcheck":
        api_path = path
    else:
        return None
    key = presented_key(scope["headers"])
    return RequestContext(route_template(scope["method"], api_path), key, ring.mode_of(key), api_path)


class ContextMiddleware:
    def __init__(self, app, ring: KeyRing) -> None:
        self.app = app
        self.ring = ring

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            scope["jofi"] = context_for(scope, self.ring)
            scope["jofi.server_send"] = send  # the server's own send: the reset fault reaches its transport
        await self.app(scope, receive, send)
