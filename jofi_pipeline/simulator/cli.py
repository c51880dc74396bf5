"""`simulate(...)`: the typer-compatible command behind `jofi-pipeline simulate` and `python -m`."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from .faults import FaultSettings
from .state import SimulatorConfig
from .world import TEST_WORLD_TEST_TAKERS


class Pagination(str, Enum):
    none = "none"
    cursor = "cursor"


def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    seed: Annotated[int, typer.Option(help="World seed: same seed, same account, same keys.")] = 42,
    test_takers: Annotated[int, typer.Option(help="Test takers in the live world at start.")] = 200,
    test_world_test_takers: Annotated[int, typer.Option(help="Test takers in the fake test-mode world.")] = TEST_WORLD_TEST_TAKERS,
    pagination: Annotated[Pagination, typer.Option(help="none: capped lists ignore paging params (as documented); cursor: honour limit/starting_after.")] = Pagination.none,
    advance_days: Annotated[int, typer.Option(help="Advance the live clock this many days before serving.")] = 0,
    live_key: Annotated[str | None, typer.Option(help="Live key to accept (default: derived from the seed).")] = None,
    test_key: Annotated[str | None, typer.Option(help="Test key to accept (default: derived from the seed).")] = None,
    latency_ms: Annotated[float, typer.Option(help="Time every API answer takes, from its request (the simulator's own work happens within it; a hang waits on top).")] = 0.0,
    latency_jitter_ms: Annotated[float, typer.Option(help="Extra random delay, uniform in [0, jitter].")] = 0.0,
    rate_limit: Annotated[float, typer.Option(help="Requests per second per key (token bucket); 0 = unlimited.")] = 0.0,
    rate_limit_burst: Annotated[int, typer.Option(help="Token bucket size; 0 = ceil(rate).")] = 0,
    error_rate: Annotated[float, typer.Option(help="Fraction of API requests answered 500/502/503.")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(help="Fraction answered 200 with an invalid JSON body.")] = 0.0,
    truncated_rate: Annotated[float, typer.Option(help="Fraction whose body is cut short.")] = 0.0,
    hang_rate: Annotated[float, typer.Option(help="Fraction that answer only after --hang-seconds (let go unanswered if the client leaves first).")] = 0.0,
    hang_seconds: Annotated[float, typer.Option(help="How long a hung request waits.")] = 30.0,
    fault_routes: Annotated[str, typer.Option(help="Comma-separated route-template substrings faults apply to (default: all).")] = "",
    fault_seed: Annotated[int | None, typer.Option(help="Seed for the fault dice.")] = None,
    faults_json: Annotated[str, typer.Option(help="Any fault settings as JSON, merged last (same names as /_sim/faults).")] = "",
    webhook_url: Annotated[str | None, typer.Option(help="Deliver live-mode events (signed, section 8.8) to this URL.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(envvar="JOFI_SIM_WEBHOOK_SECRET", help="Endpoint secret that signs deliveries (or env JOFI_SIM_WEBHOOK_SECRET).", show_default=False)] = None,
    daily_invitations: Annotated[float | None, typer.Option(help="Live activity rate: new invitations per simulated day (default 4).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (slows the server down).")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    stop_on_stdin_eof: Annotated[bool, typer.Option(help="Stop when stdin closes (give it a pipe: the server ends with the process holding the other end).")] = False,
) -> None:
    """Run the JOFI API simulator: prints JOFI_API_BASE_URL and both keys, then serves until stopped."""
    from .server import serve  # uvicorn is only needed when actually serving

    update: dict = {
        "latency_ms": latency_ms,
        "latency_jitter_ms": latency_jitter_ms,
        "rate_limit_per_s": rate_limit,
        "rate_limit_burst": rate_limit_burst,
        "error_rate": error_rate,
        "malformed_rate": malformed_rate,
        "truncated_rate": truncated_rate,
        "hang_rate": hang_rate,
        "hang_seconds": hang_seconds,
        "routes": fault_routes,
        "seed": fault_seed,
    }
    try:
        if faults_json:
            update.update(json.loads(faults_json))
        faults = FaultSettings().merged(update)
        config = SimulatorConfig(
            seed=seed,
            test_takers=test_takers,
            test_world_test_takers=test_world_test_takers,
            pagination=pagination.value if isinstance(pagination, Pagination) else str(pagination),
            live_key=live_key,
            test_key=test_key,
            advance_days=advance_days,
            faults=faults,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            daily_invitations=daily_invitations,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    serve(config, host=host, port=port, access_log=access_log, log_level=log_level, stop_on_stdin_eof=stop_on_stdin_eof)
