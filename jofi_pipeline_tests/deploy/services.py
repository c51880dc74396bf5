"""Real services the deploy tests start themselves, on loopback only: PostgreSQL (pgserver ships
the binaries), an S3 server (moto in server mode), a slow link in front of it, and processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Postgres:
    """A private PostgreSQL cluster in a temp dir, reached over a Unix socket; stopped and deleted on close."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            try:
                import pgserver
            except ImportError as exc:
                raise RuntimeError(
                    f"these tests start a real PostgreSQL with the pgserver package, which is not installed here "
                    f"(it ships wheels for CPython 3.11 and 3.12 only; this is {sys.version.split()[0]}): "
                    "run the suite on Python 3.11 or 3.12"
                ) from exc

            # A short path: the socket lives under it and Unix socket paths are limited to ~100 bytes.
            self._dir = Path(tempfile.mkdtemp(prefix="jofi-pg-"))
            self._server = pgserver.get_server(self._dir / "data", cleanup_mode="delete")

    def create_database(self) -> str:
        """A fresh database; returns its URL in the form DAGSTER_PG_URL takes."""
        name = f"dagster_{uuid.uuid4().hex[:8]}"
        self._server.psql(f"CREATE DATABASE {name};")
        return self._server.get_uri(name)

    def close(self) -> None:
        try:
            self._server.cleanup()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


class S3:
    """moto's S3 server on a free loopback port, with the standard AWS variables to reach it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.port = port

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        import boto3

        env = self.env()
        return boto3.client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"],
        )

    def new_bucket(self) -> str:
        name = f"jofi-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """key -> ETag of everything under prefix."""
        found: dict[str, str] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["ETag"]
        return found

    def get_json(self, bucket: str, key: str) -> Any:
        import json

        return json.loads(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def close(self) -> None:
        self._server.stop()


class SlowLink:
    """A TCP proxy to `port` that forwards what the client sends at `rate` bytes/s: a slow uplink,
    so an upload is still running when the test kills it."""

    def __init__(self, port: int, rate: float) -> None:
        self._target = ("127.0.0.1", port)
        self._rate = rate
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.bytes_up = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, throttle: bool) -> None:
        try:
            while chunk := source.recv(16384):
                if throttle:
                    time.sleep(len(chunk) / self._rate)
                    self.bytes_up += len(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            sock.close()


class Process:
    """A command in its own process group, output to a file; stop() ends that group only."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        self.argv = argv
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:  # the group may still hold children (a code server's run workers)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._out.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
