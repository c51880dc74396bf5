"""What a simulator's start leaves out: a test suite starts ~90 of them, and most never send a
webhook nor accept a WebSocket. httpx (with its command line's rich and pygments) is loaded at the
first webhook delivery (webhooks.py); no WebSocket library is loaded at all (server.py)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.e2e  # a simulator process of its own: what it loaded is what is tested

NOT_AT_START = ("httpx", "rich", "websockets")

# `python -m jofi_pipeline.simulator`, reporting at its end which of NOT_AT_START it had loaded.
STARTED_AS_MAIN = f"""
import atexit, runpy, sys
atexit.register(lambda: print("loaded:", *[m for m in {NOT_AT_START!r} if m in sys.modules], file=sys.stderr))
sys.argv = ["jofi_pipeline.simulator", *sys.argv[1:]]
runpy.run_module("jofi_pipeline.simulator", run_name="__main__", alter_sys=True)
"""


def test_a_simulator_serving_requests_loads_no_http_client_nor_websocket_library():
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTED_AS_MAIN, "--port", "0", "--seed", "5", "--test-takers", "5", "--stop-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = proc.stdout.readline().rstrip("\n").split("=", 1)[1]
        live_key = proc.stdout.readline().rstrip("\n").split("=", 1)[1]
        assert httpx.get(base + "/accounts", headers={"Authorization": f"Bearer {live_key}"}).status_code == 200
        proc.stdin.close()  # the simulator stops (--stop-on-stdin-eof) and its atexit handler reports
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "loaded:\n" in err, err  # none of NOT_AT_START
