"""An ASGI app under a real uvicorn server in a thread, on a free port: for tests' stand-in peers."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


class ThreadedServer:
    """`with ThreadedServer(app) as server:` serves `app` at `server.root_url` until the block ends."""

    def __init__(self, app) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.root_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
