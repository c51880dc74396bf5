"""Request counts per route template, mode and status — what tests and benchmarks assert on.

A request is counted when its answer starts. A hung request whose client gave up is never
answered, so it is not in `total`, `routes` or `rows`; it is counted apart, in `abandoned`, the
moment the simulator lets it go (faults.py `_hang`). Its hang still shows in `/_sim/stats`'
`faults_fired`: the fault did fire. A reset (dropped) request is likewise in `faults_fired` only.
"""

from __future__ import annotations

from collections import Counter


class Stats:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self.abandoned: Counter[tuple[str, str]] = Counter()  # by route template and mode

    def record(self, template: str, mode: str | None, status: int) -> None:
        self.counts[(template, mode or "none", status)] += 1

    def abandon(self, template: str, mode: str | None) -> None:
        self.abandoned[(template, mode or "none")] += 1

    def reset(self) -> None:
        self.counts.clear()
        self.abandoned.clear()

    def snapshot(self) -> dict:
        """`{total, routes: {template: {total, by_mode, by_status}}, rows: [...], abandoned: {total, routes, by_mode}}`."""
        routes: dict[str, dict] = {}
        for (template, mode, status), n in sorted(self.counts.items()):
            entry = routes.setdefault(template, {"total": 0, "by_mode": {}, "by_status": {}})
            entry["total"] += n
            entry["by_mode"][mode] = entry["by_mode"].get(mode, 0) + n
            entry["by_status"][str(status)] = entry["by_status"].get(str(status), 0) + n
        rows = [
            {"route": template, "mode": mode, "status": status, "count": n}
            for (template, mode, status), n in sorted(self.counts.items())
        ]
        abandoned_routes: Counter[str] = Counter()
        abandoned_modes: Counter[str] = Counter()
        for (template, mode), n in self.abandoned.items():
            abandoned_routes[template] += n
            abandoned_modes[mode] += n
        abandoned = {"total": sum(self.abandoned.values()), "routes": dict(sorted(abandoned_routes.items())),
                     "by_mode": dict(sorted(abandoned_modes.items()))}
        return {"total": sum(self.counts.values()), "routes": routes, "rows": rows, "abandoned": abandoned}


class StatsMiddleware:
    """Counts each API response by the status it started with, and each request abandoned unanswered."""

    def __init__(self, app, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope, receive, send) -> None:
        ctx = scope.get("jofi") if scope["type"] == "http" else None
        if ctx is None:
            await self.app(scope, receive, send)
            return

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                self.stats.record(ctx.template, ctx.mode, message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)
        if ctx.abandoned:
            self.stats.abandon(ctx.template, ctx.mode)
