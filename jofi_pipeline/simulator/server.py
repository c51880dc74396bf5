"""Run the app under uvicorn on a socket we bind ourselves, so port 0 still prints the real URL.

Stdout carries exactly the three contract lines (then nothing); a short startup note goes to
stderr. No access log by default: per-request logging costs more than the routes do.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading

import uvicorn

from .app import build_app
from .state import SimulatorConfig, SimulatorState


class _QuietTruncation(logging.Filter):
    """The truncated-body fault drops connections on purpose; uvicorn would log each one as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def contract_lines(host: str, port: int, config: SimulatorConfig) -> list[str]:
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    return [
        f"JOFI_API_BASE_URL=http://{shown}:{port}/api/v2",
        f"JOFI_LIVE_API_KEY={config.live_key}",
        f"JOFI_TEST_API_KEY={config.test_key}",
    ]


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lines: list[str], note: str) -> None:
        super().__init__(config)
        self._lines = lines
        self._note = note

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            sys.stdout.write("\n".join(self._lines) + "\n")
            sys.stdout.flush()
            print(self._note, file=sys.stderr, flush=True)


def serve(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0, access_log: bool = False, log_level: str = "warning",
    stop_on_stdin_eof: bool = False,
) -> None:
    state = SimulatorState(config)
    app = build_app(state=state)
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    logging.getLogger("uvicorn.error").addFilter(_QuietTruncation())
    uv_config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        ws="none",  # no WebSocket routes: not loading a WebSocket library spares every start ~0.02 s of CPU
        access_log=access_log,
        log_level=log_level,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=False,
    )
    live = state.worlds["live"]
    note = (
        f"jofi simulator: seed={config.seed} test_takers={len(live.test_takers)} invitations={len(live.invitations)} "
        f"pagination={config.pagination} listening on {host}:{actual_port}"
    )
    server = _AnnouncingServer(uv_config, contract_lines(host, actual_port, config), note)
    if stop_on_stdin_eof:
        threading.Thread(target=_stop_at_eof, args=(server,), name="jofi-sim-lifeline", daemon=True).start()
    server.run(sockets=[sock])


def _stop_at_eof(server: uvicorn.Server) -> None:
    """Stop serving once stdin ends: the process that started us with a pipe is gone (however it
    ended, SIGKILL included), so nothing is left listening on a port nobody will use."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    server.should_exit = True
