"""`SimulatorProcess`: the simulator in a subprocess on a free port, for tests and benchmarks.

    with SimulatorProcess(seed=7, test_takers=50, pagination="cursor") as sim:
        httpx.get(sim.base_url + "/accounts", headers={"Authorization": f"Bearer {sim.live_key}"})
        sim.advance(3)

Keyword options map onto the CLI flags (`test_takers=50` -> `--test-takers 50`; `True` -> the
bare flag; a dict, e.g. `faults_json={...}`, is sent as JSON).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

STARTUP_TIMEOUT_S = 30.0
ADMIN_TIMEOUT_S = 60.0


def cli_args(options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, (dict, list)):
            args += [flag, json.dumps(value)]
        else:
            args += [flag, str(getattr(value, "value", value))]
    return args


class SimulatorProcess:
    """Context manager owning one simulator subprocess; admin helpers talk to its /_sim/ routes."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("port", 0)
        self.options = options
        self.base_url = ""
        self.root_url = ""
        self.live_key = ""
        self.test_key = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="jofi-sim-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)
        self._log_kept = False
        self._admin: httpx.Client | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> SimulatorProcess:
        if self._proc is not None:
            return self
        # A lifeline: the server reads its stdin, a pipe only this process writes to, and stops when
        # it closes. So it ends with its owner however the owner ends (SIGTERM or SIGKILL unwind no
        # `with`), instead of serving on, orphaned.
        command = [sys.executable, "-m", "jofi_pipeline.simulator", *cli_args(self.options), "--stop-on-stdin-eof"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        lines = self._read_contract_lines()
        values = dict(line.split("=", 1) for line in lines)
        self.base_url = values["JOFI_API_BASE_URL"]
        self.root_url = self.base_url.removesuffix("/api/v2")
        self.live_key = values["JOFI_LIVE_API_KEY"]
        self.test_key = values["JOFI_TEST_API_KEY"]
        self._admin = httpx.Client(base_url=self.root_url, timeout=ADMIN_TIMEOUT_S)
        return self

    def _read_contract_lines(self) -> list[str]:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        found: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # keep draining stdout so the child can never block on a full pipe
            for line in stdout:
                found.put(line.rstrip("\n"))
            found.put(None)

        threading.Thread(target=pump, name="jofi-sim-stdout", daemon=True).start()
        lines: list[str] = []
        while len(lines) < 3:
            try:
                line = found.get(timeout=STARTUP_TIMEOUT_S)
            except queue.Empty:
                line = None
            if line is None:
                log = self.log_text()
                self._stop(keep_log_of_a_death=False)  # the error below carries the log
                raise RuntimeError(f"simulator did not start; its log:\n{log[-3000:]}")
            lines.append(line)
        return lines

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server and remove its log, unless it had died on its own: that log is kept and named."""
        self._stop(keep_log_of_a_death=True)

    def _stop(self, *, keep_log_of_a_death: bool) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        proc, self._proc = self._proc, None
        died = proc is not None and proc.poll() not in (None, 0)
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()
        if died and keep_log_of_a_death:
            self._log_kept = True
            print(f"the simulator had exited with code {proc.returncode}; its log is kept: {self.log_path}",
                  file=sys.stderr)
        elif not self._log_kept:
            self.log_path.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        """The server process's id (benchmarks read its CPU time), None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- admin helpers (/_sim/) ---------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._admin is None:
            raise RuntimeError("the simulator is not running")
        response = self._admin.request(method, "/_sim" + path, **kwargs)
        response.raise_for_status()
        return response.json()

    def advance(self, days: int = 1, *, hours: int | None = None) -> dict:
        """Move the live clock `days` forward, or `hours` when given."""
        return self._call("POST", "/advance", params={"hours": hours} if hours is not None else {"days": days})

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/stats/reset")

    def faults(self) -> dict:
        return self._call("GET", "/faults")

    def set_faults(self, **faults: Any) -> dict:
        return self._call("POST", "/faults", json=faults)

    def clear_faults(self) -> dict:
        return self._call("DELETE", "/faults")

    def truth(self, mode: str = "live") -> dict:
        return self._call("GET", "/truth", params={"mode": mode})

    def info(self) -> dict:
        return self._call("GET", "/info")

    def reset(self) -> dict:
        """Rebuild the worlds from the start options (also clears faults and stats)."""
        return self._call("POST", "/reset")

    def webhooks(self) -> dict:
        """Webhook settings (never the secret), delivery counters and the pending queue."""
        return self._call("GET", "/webhooks")

    def set_webhooks(self, **settings: Any) -> dict:
        """Merge `url`, `secret`, `max_attempts`; `url=None` switches deliveries off."""
        return self._call("POST", "/webhooks", json=settings)

    def flush_webhooks(self, timeout: float = 60.0) -> dict:
        """Wait until every queued delivery was answered (or given up); `flushed` says which."""
        return self._call("POST", "/webhooks/flush", params={"timeout": timeout})

    def env(self) -> dict[str, str]:
        """The three variables a client needs, as the simulator printed them."""
        return {"JOFI_API_BASE_URL": self.base_url, "JOFI_LIVE_API_KEY": self.live_key, "JOFI_TEST_API_KEY": self.test_key}
