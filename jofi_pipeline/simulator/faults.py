"""Injected trouble: latency, rate limits, 5xx, malformed or truncated bodies, hung requests,
dropped connections, HTML answers, the other mode's answers, revoked keys, deleted records and
schema drift.

Each kind of trouble is one `FaultRule` subclass below: its `knobs` (the settings that switch it on
or shape it, each with its default and its check) and up to two hooks, `before` (delay or answer
instead of the route) and `after` (mangle the route's answer). Defining the class registers it:
rules run in the order they are defined. `FaultSettings` (one flat JSON object, set at start from
CLI options and merged at run time through `/_sim/faults`), its validation and `TRIGGERS` are all
derived from the registered rules' knobs plus the `SCOPE` knobs. To add a fault, write its class:
nothing else changes. Faults touch /api/v2 routes only: never /_sim/, and /healthcheck only with
`include_healthcheck`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any

from .context import RequestContext
from .errors import error_body

# ---- settings: knobs, declared by the rules that read them -------------------------------------


def _no_check(value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Knob:
    """One `/_sim/faults` setting: name, Python type, default, and a check that names what is wrong."""

    name: str
    type: Any
    default: Any
    trigger: bool = False  # a value other than the default switches the fault on; others shape or scope it
    check: Callable[[Any], str | None] = _no_check


def fraction(name: str) -> Knob:
    """A share of requests that a fault hits: 0 (off) to 1 (every request)."""
    return Knob(name, float, 0.0, True, lambda v: None if 0.0 <= v <= 1.0 else f"{name} must be between 0 and 1")


def amount(name: str, kind: type, default: Any = 0, *, trigger: bool = False) -> Knob:
    """A non-negative number."""
    return Knob(name, kind, default, trigger, lambda v: None if v >= 0 else f"{name} must not be negative")


def choice(name: str, options: tuple[str, ...], *, trigger: bool = False) -> Knob:
    """One of a few words; the first is the default."""
    listed = ", ".join(repr(o) for o in options)
    return Knob(name, str, options[0], trigger, lambda v: None if v in options else f"{name} must be one of {listed}")


SCOPE: tuple[Knob, ...] = (
    Knob("routes", list[str], []),  # route-template substrings; empty = every route
    Knob("modes", list[str], []),  # "live"/"test"/"none"; empty = every mode
    Knob("include_healthcheck", bool, False),
    Knob("seed", int | None, None),  # fault dice seed; None = fresh randomness
)
"""Knobs that say where and how repeatably faults apply, not which."""

_REGISTRY: list[FaultRule] = []


# ---- what a rule can decide ---------------------------------------------------------------


@dataclass
class Plan:
    """The faults chosen for one request."""

    delay_s: float = 0.0
    response: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None  # answer instead of the route
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # added to the route's answer
    mangle: str | None = None  # "malformed" | "truncated_content_length" | "truncated_json"
    rewrites: list[Callable[[Any], Any]] = field(default_factory=list)  # applied to a JSON answer
    reset: bool = False  # drop the connection without answering
    hung: bool = False  # the delay is a hang: wait watching for the client to give up (see _hang)
    fired: list[str] = field(default_factory=list)


class TokenBuckets:
    """One token bucket per presented key (requests without a key share one)."""

    def __init__(self) -> None:
        self._buckets: dict[str | None, tuple[float, float]] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def take(self, key: str | None, rate: float, size: int) -> tuple[bool, float, float]:
        """(allowed, tokens left, seconds until the next token)."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(size), now))
        tokens = min(float(size), tokens + (now - last) * rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
        return allowed, tokens, wait


class FaultRule:
    """One kind of trouble. Subclasses register themselves; they run in the order they are defined."""

    name = "rule"
    knobs: tuple[Knob, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY.append(cls())

    def before(self, s: FaultSettings, ctx: RequestContext, rng: random.Random, plan: Plan, injector: FaultInjector) -> None:
        """Add a delay or an answer to `plan` before the route runs."""

    def after(self, s: FaultSettings, ctx: RequestContext, rng: random.Random, plan: Plan) -> None:
        """Choose how to mangle the route's answer."""


class Latency(FaultRule):
    name = "latency"
    knobs = (
        amount("latency_ms", float, 0.0, trigger=True),
        amount("latency_jitter_ms", float, 0.0, trigger=True),  # extra delay, uniform in [0, jitter]
    )

    def before(self, s, ctx, rng, plan, injector) -> None:
        if s.latency_ms or s.latency_jitter_ms:
            plan.delay_s += (s.latency_ms + rng.uniform(0, s.latency_jitter_ms)) / 1000.0
            plan.fired.append(self.name)


class Hang(FaultRule):
    name = "hang"
    knobs = (fraction("hang_rate"), amount("hang_seconds", float, 30.0))

    def before(self, s, ctx, rng, plan, injector) -> None:
        if s.hang_rate and rng.random() < s.hang_rate:
            plan.delay_s += s.hang_seconds
            plan.hung = True
            plan.fired.append(self.name)


class RateLimit(FaultRule):
    name = "rate_limit"
    knobs = (
        amount("rate_limit_per_s", float, 0.0, trigger=True),  # per-key token bucket refill rate; 0 = no limit
        amount("rate_limit_burst", int),  # bucket size; 0 = max(1, ceil(rate_limit_per_s))
    )

    def before(self, s, ctx, rng, plan, injector) -> None:
        if not s.rate_limit_per_s:
            return
        size = s.rate_limit_burst or max(1, math.ceil(s.rate_limit_per_s))
        allowed, tokens, wait = injector.buckets.take(ctx.key, s.rate_limit_per_s, size)
        reset = max(1, math.ceil(wait)) if wait else 0
        headers = [
            (b"ratelimit-limit", str(size).encode()),
            (b"ratelimit-remaining", str(int(tokens)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
        if allowed:
            plan.headers.extend(headers)
            return
        plan.fired.append(self.name)
        message = f"Too many requests: limit is {s.rate_limit_per_s:g} per second per key. Retry after {reset} s."
        plan.response = (429, [*headers, (b"retry-after", str(reset).encode())], error_body(429, message, ctx.mode))


class RevokedKey(FaultRule):
    """The key stops working after N requests, as when someone revokes it during a run."""

    name = "revoked"
    knobs = (amount("revoke_after_requests", int, trigger=True),)  # 0 = never; else 401 after the first N requests

    def before(self, s, ctx, rng, plan, injector) -> None:
        if not s.revoke_after_requests or plan.response is not None:
            return
        injector.requests_seen += 1
        if injector.requests_seen > s.revoke_after_requests:
            plan.fired.append(self.name)
            plan.response = (401, [], error_body(401, "Invalid API key provided (revoked).", None))


class ServerError(FaultRule):
    name = "error"
    knobs = (
        fraction("error_rate"),
        Knob("error_statuses", list[int], [500, 502, 503], check=lambda v: None if v and all(500 <= s <= 599 for s in v)
             else "error_statuses must be a non-empty list of 5xx codes"),
    )

    def before(self, s, ctx, rng, plan, injector) -> None:
        if plan.response is None and s.error_rate and rng.random() < s.error_rate:
            status = rng.choice(s.error_statuses)
            plan.fired.append(self.name)
            body = error_body(status, "The server had an error while processing your request (injected).", ctx.mode)
            plan.response = (status, list(plan.headers), body)


class Reset(FaultRule):
    name = "reset"
    knobs = (fraction("reset_rate"),)  # the connection is dropped without any response

    def before(self, s, ctx, rng, plan, injector) -> None:
        if plan.response is None and s.reset_rate and rng.random() < s.reset_rate:
            plan.reset = True
            plan.fired.append(self.name)


class WrongContentType(FaultRule):
    name = "wrong_content_type"
    knobs = (fraction("wrong_content_type_rate"),)  # answered 200 text/html (a proxy's error page)
    PAGE = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>"

    def before(self, s, ctx, rng, plan, injector) -> None:
        if plan.response is None and s.wrong_content_type_rate and rng.random() < s.wrong_content_type_rate:
            plan.fired.append(self.name)
            plan.response = (200, [(b"content-type", b"text/html; charset=utf-8")], self.PAGE)


class NotFound(FaultRule):
    """Listed ids are gone: 404 by id (their sub-resources too), and missing from lists."""

    name = "not_found"
    knobs = (Knob("not_found_ids", list[int], [], trigger=True),)

    def before(self, s, ctx, rng, plan, injector) -> None:
        if not s.not_found_ids or plan.response is not None or "{id}" not in ctx.template:
            return
        segments = set(ctx.path.split("/"))
        gone = next((i for i in s.not_found_ids if str(i) in segments), None)
        if gone is not None:
            plan.fired.append(self.name)
            plan.response = (404, [], error_body(404, f"No such record: {gone} (deleted, injected).", ctx.mode))

    def after(self, s, ctx, rng, plan) -> None:
        if s.not_found_ids and "{id}" not in ctx.template:
            gone = set(s.not_found_ids)
            plan.rewrites.append(lambda body: _without_ids(body, gone))


class Drift(FaultRule):
    """The API changed shape: fields removed, added, or of another JSON type."""

    name = "drift"
    knobs = tuple(Knob(f"drift_{change}", list[str], [], trigger=True) for change in ("remove", "add", "retype"))

    def after(self, s, ctx, rng, plan) -> None:
        if s.drift_remove or s.drift_add or s.drift_retype:
            plan.fired.append(self.name)
            plan.rewrites.append(lambda body: _each_object(body, lambda obj: _drifted(obj, s)))


class ForceMode(FaultRule):
    """Every JSON body claims a mode: a server mixing up modes, or a proxy in front of the wrong one."""

    name = "force_mode"
    knobs = (choice("force_mode", ("", "live", "test", "other"), trigger=True),)  # "" = honest; else the claimed mode

    def after(self, s, ctx, rng, plan) -> None:
        if not s.force_mode:
            return
        claimed = s.force_mode
        if claimed == "other":
            claimed = {"live": "test", "test": "live"}.get(ctx.mode or "", "live")
        plan.fired.append(self.name)
        plan.rewrites.append(lambda body: {**body, "mode": claimed} if isinstance(body, dict) else body)


class Malformed(FaultRule):
    name = "malformed"
    knobs = (fraction("malformed_rate"),)  # answered 200 with a body that is not JSON

    def after(self, s, ctx, rng, plan) -> None:
        if s.malformed_rate and rng.random() < s.malformed_rate:
            plan.mangle = "malformed"
            plan.fired.append(self.name)


class Truncated(FaultRule):
    name = "truncated"
    knobs = (fraction("truncated_rate"), choice("truncated_style", ("mixed", "content_length", "json")))

    def after(self, s, ctx, rng, plan) -> None:
        if plan.mangle is None and s.truncated_rate and rng.random() < s.truncated_rate:
            style = s.truncated_style
            if style == "mixed":
                style = rng.choice(("content_length", "json"))
            plan.mangle = f"truncated_{style}"
            plan.fired.append(self.name)


RULES: tuple[FaultRule, ...] = tuple(_REGISTRY)
KNOBS: tuple[Knob, ...] = (*(knob for rule in RULES for knob in rule.knobs), *SCOPE)
TRIGGERS: tuple[str, ...] = tuple(knob.name for knob in KNOBS if knob.trigger)
"""Settings that switch a fault on (the rest only shape or scope one)."""


class _SettingsMethods:
    def merged(self, update: dict[str, Any]) -> FaultSettings:
        """A copy with `update` applied; unknown names or wrong types raise ValueError."""
        data = self.to_dict()
        known = {knob.name: knob for knob in KNOBS}
        for name, value in update.items():
            if name not in known:
                raise ValueError(f"unknown fault setting {name!r}; known: {', '.join(sorted(known))}")
            data[name] = _coerce(name, known[name].type, value)
        result = FaultSettings(**data)
        result.validate()
        return result

    def validate(self) -> None:
        for knob in KNOBS:
            problem = knob.check(getattr(self, knob.name))
            if problem:
                raise ValueError(problem)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


FaultSettings = make_dataclass(
    "FaultSettings",
    [(k.name, k.type, field(default_factory=lambda k=k: copy.deepcopy(k.default))) for k in KNOBS],
    bases=(_SettingsMethods,),
)
FaultSettings.__module__ = __name__
FaultSettings.__doc__ = "Every knob of every registered rule, plus SCOPE: the body of `/_sim/faults`."


def _coerce(name: str, hint: Any, value: Any) -> Any:
    text = str(hint)
    try:
        if value is None and "None" in text:
            return None
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if hint is int or text.startswith("int"):
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if text.startswith("list"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return [int(v) for v in items] if "int" in text else [str(v).strip() for v in items if str(v).strip()]
    except (TypeError, ValueError):
        pass
    raise ValueError(f"fault setting {name!r} has the wrong type: {value!r}")


def _without_ids(body: Any, gone: set[int]) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    kept = [item for item in body["data"] if not (isinstance(item, dict) and item.get("id") in gone)]
    removed = len(body["data"]) - len(kept)
    total = body.get("total_count")
    return {**body, "data": kept, **({"total_count": total - removed} if isinstance(total, int) else {})}


def _each_object(body: Any, change: Callable[[dict], dict]) -> Any:
    """Apply `change` to the record(s) a body carries: each list item, or the object itself."""
    if not isinstance(body, dict) or body.get("object") == "error":
        return body
    if body.get("object") == "list" and isinstance(body.get("data"), list):
        return {**body, "data": [change(i) if isinstance(i, dict) else i for i in body["data"]]}
    return change(body)


def _drifted(obj: dict, s: FaultSettings) -> dict:
    out = {k: v for k, v in obj.items() if k not in s.drift_remove}
    for name in s.drift_add:
        out[name] = "drift"
    for name in s.drift_retype:
        if name in out:
            out[name] = _retyped(out[name])
    return out


def _retyped(value: Any) -> Any:
    """The same information in another JSON type: numbers become text, text becomes a number."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return len(value)
    if value is None:
        return {"value": None}
    return str(value)


class FaultInjector:
    """Holds the current settings, the dice and the token buckets."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.buckets = TokenBuckets()
        self.fired: dict[str, int] = {}
        self.requests_seen = 0  # for revoke_after_requests; restarts whenever settings change
        self.set(settings or FaultSettings())

    def set(self, settings: FaultSettings) -> None:
        settings.validate()
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.buckets.reset()
        self.requests_seen = 0
        defaults = FaultSettings()
        self.active = any(getattr(settings, name) != getattr(defaults, name) for name in TRIGGERS)

    def merge(self, update: dict[str, Any]) -> None:
        self.set(self.settings.merged(update))

    def clear(self) -> None:
        self.set(FaultSettings())
        self.fired.clear()

    def applies(self, ctx: RequestContext) -> bool:
        s = self.settings
        if ctx.is_healthcheck and not s.include_healthcheck:
            return False
        if s.routes and not any(part in ctx.template for part in s.routes):
            return False
        return not s.modes or (ctx.mode or "none") in s.modes

    def plan(self, ctx: RequestContext) -> Plan:
        plan = Plan()
        for rule in RULES:
            rule.before(self.settings, ctx, self.rng, plan, self)
        if plan.response is None:
            for rule in RULES:
                rule.after(self.settings, ctx, self.rng, plan)
        for name in plan.fired:
            self.fired[name] = self.fired.get(name, 0) + 1
        return plan

    def describe(self) -> dict:
        return {"settings": self.settings.to_dict(), "active": self.active, "fired": dict(self.fired)}


# ---- the ASGI layer ----------------------------------------------------------------------


class FaultMiddleware:
    def __init__(self, app, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope, receive, send) -> None:
        ctx = scope.get("jofi") if scope["type"] == "http" else None
        injector = self.injector
        if ctx is None or not injector.active or not injector.applies(ctx):
            await self.app(scope, receive, send)
            return
        plan = injector.plan(ctx)
        if plan.delay_s and not (plan.hung or plan.reset or plan.response is not None):
            plain = not plan.headers and plan.mangle is None and not plan.rewrites
            await _answer_within(plan.delay_s, lambda held: self.app(scope, receive, held if plain else _Mangler(held, plan)), send)
            return
        if plan.hung:
            receive = await _hang(plan.delay_s, receive)
            if receive is None:  # the client gave up on the hung request: nobody to answer
                ctx.abandoned = True
                return
        elif plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if plan.reset:
            await _drop_connection(scope)
            return
        if plan.response is not None:
            status, headers, body = plan.response
            await _send_whole(send, status, headers, body)
            return
        if not plan.headers and plan.mangle is None and not plan.rewrites:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Mangler(send, plan))


async def _answer_within(seconds: float, route: Callable, send) -> None:
    """Latency as a client meets it: the answer leaves `seconds` after its request came, with the
    simulator's own work done within that time, as a real API's is.

    Work done after the delay was added to it: every answer was its own CPU (~0.3 ms) slower than
    the latency asked for. Answers due at the same moment also queued behind each other on the one
    event loop, so a benchmark's bound (concurrency / latency) could not be reached by any client.
    Every answer a route gives is held so, mangled or with added headers too (the rate limit's).
    A hang waits first (it watches for the client leaving); a reset or an injected answer (429,
    5xx) runs no route. A route that raises still answers when due with what it sent (Starlette's
    500), and the error goes on.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + seconds
    held: list[dict] = []

    async def hold(message: dict) -> None:
        held.append(message)

    async def answer() -> None:
        left = due - loop.time()
        if left > 0:
            await asyncio.sleep(left)
        for message in held:
            await send(message)

    try:
        await route(hold)
    except Exception:
        await answer()
        raise
    await answer()


async def _hang(seconds: float, receive):
    """Wait `seconds` unless the client leaves first; then None, else a `receive` for the route.

    A hung request must end when its client gives up: uvicorn does not cancel a request whose
    connection closed, so a plain sleep would answer (and be counted) long after, maybe in a
    later test's stats. Waiting on the request's own `receive()` under a timeout sees the
    disconnect with no extra task or poll: a GET's (empty) body message comes at once, the next
    call waits until the connection closes. Whatever body was read meanwhile is handed on to the
    route through the returned `receive`. Only hangs wait this way (latency included, when both
    fire): it costs ~10 us of CPU more than a sleep, ~15% of the simulator's throughput if every
    50 ms latency request paid it, and a latency delay ends long before any client's timeout.
    Two limits of asking uvicorn: a hung request with another pipelined behind it on the same
    connection is not told of the disconnect (uvicorn tells only the newest), so it is held for
    the whole hang, as before; and a request sent with `Expect: 100-continue` gets its
    "100 Continue" when the hang starts, not when it ends (the first `receive()` sends it).
    """
    read: list[dict] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                read.append(message)
    except TimeoutError:
        pass
    if not read:
        return receive

    async def replay():
        return read.pop(0) if read else await receive()

    return replay


async def _drop_connection(scope) -> None:
    """Abort the TCP connection under the request (uvicorn's send is bound to a cycle with a transport)."""
    server_send = scope.get("jofi.server_send")
    transport = getattr(getattr(server_send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("reset fault: the server's transport is not reachable")
    transport.abort()
    for _ in range(3):  # let connection_lost run, so the server knows not to answer a closed socket
        await asyncio.sleep(0)


async def _send_whole(send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    typed = any(k.lower() == b"content-type" for k, _ in headers)
    head = [*([] if typed else [(b"content-type", b"application/json")]), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Mangler:
    """A `send` that adds headers and, when asked, breaks the body after the route produced it."""

    def __init__(self, send, plan: Plan) -> None:
        self.send = send
        self.plan = plan
        self.start: dict | None = None
        self.chunks: list[bytes] = []
        self.buffering = plan.mangle is not None or bool(plan.rewrites)

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.start = dict(message)
            self.start["headers"] = [*message.get("headers", []), *self.plan.headers]
            if not self.buffering:
                await self.send(self.start)
            return
        if message["type"] != "http.response.body" or not self.buffering:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        await self._send_mangled(b"".join(self.chunks))

    async def _send_mangled(self, body: bytes) -> None:
        assert self.start is not None
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        body = _rewritten(body, self.plan.rewrites)
        mangle = self.plan.mangle
        if mangle is None:
            await _send_whole(self.send, self.start["status"], headers, body)
        elif mangle == "malformed":
            broken = b'{"mode": "live", "object": <html>502 Bad Gateway</html>' + body[: len(body) // 3]
            await _send_whole(self.send, 200, [h for h in headers if h[0].lower() != b"content-type"], broken)
        elif mangle == "truncated_json":
            cut = body[: max(1, len(body) // 2)]
            await _send_whole(self.send, self.start["status"], [h for h in headers if h[0].lower() != b"content-type"], cut)
        else:  # truncated_content_length: promise the whole body, send half, drop the connection
            head = [*headers, (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
            await self.send({"type": "http.response.start", "status": self.start["status"], "headers": head})
            await self.send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            # Returning without finishing makes uvicorn close the connection mid-body.


def _rewritten(body: bytes, rewrites: list[Callable[[Any], Any]]) -> bytes:
    if not rewrites:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    for rewrite in rewrites:
        data = rewrite(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
