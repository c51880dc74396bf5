"""The process contract: three stdout lines, deterministic keys, overrides, bad options refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from jofi_pipeline.simulator.keys import default_live_key, default_test_key
from jofi_pipeline.simulator.process import SimulatorProcess

pytestmark = pytest.mark.e2e  # every test here starts a simulator process of its own


def test_prints_exactly_three_lines_first():
    proc = subprocess.Popen(
        [sys.executable, "-m", "jofi_pipeline.simulator", "--port", "0", "--seed", "5", "--test-takers", "35"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        assert lines[0].startswith("JOFI_API_BASE_URL=http://127.0.0.1:") and lines[0].endswith("/api/v2")
        assert lines[1] == f"JOFI_LIVE_API_KEY={default_live_key(5)}"
        assert lines[2] == f"JOFI_TEST_API_KEY={default_test_key(5)}"
        base = lines[0].split("=", 1)[1]
        assert httpx.get(base + "/healthcheck").json() == {"status": "ok"}
        assert httpx.get(base + "/accounts", headers={"Authorization": f"Bearer {default_live_key(5)}"}).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out == "", "nothing else on stdout"


def test_keys_differ_by_seed_and_can_be_overridden(make_simulator):
    assert default_live_key(1) != default_live_key(2) and default_live_key(1).startswith("sk_live_")
    sim = make_simulator(test_takers=35, live_key="sk_live_custom123", test_key="sk_test_custom456")
    assert (sim.live_key, sim.test_key) == ("sk_live_custom123", "sk_test_custom456")
    headers = {"Authorization": "Bearer sk_test_custom456"}
    assert httpx.get(sim.base_url + "/accounts", headers=headers).json()["mode"] == "test"


def test_bad_options_are_refused():
    with pytest.raises(RuntimeError, match="did not start"):
        SimulatorProcess(live_key="sk_test_wrongprefix").start()
    with pytest.raises(RuntimeError, match="did not start"):
        SimulatorProcess(pagination="pages").start()


def test_reset_rebuilds_the_world(make_simulator):
    sim = make_simulator(test_takers=35)
    before = sim.truth("live")
    sim.advance(3)
    assert sim.truth("live") != before
    sim.reset()
    assert sim.truth("live") == before


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_simulator_ends_with_the_process_that_started_it_however_that_ends(how):
    """Neither signal unwinds the owner's `with`; the server must not stay behind, serving on its port."""
    import os
    import signal
    import time

    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time\n"
         # An owner as a user runs it: SIGTERM ends it, even when the test runner's own parent
         # ignores SIGTERM (an ignored signal is inherited across exec).
         "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
         "from jofi_pipeline.simulator.process import SimulatorProcess\n"
         "with SimulatorProcess(test_takers=5) as sim:\n"
         "    print(sim.pid, sim.base_url, sim.log_path, flush=True)\n"
         "    time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    pid = log = None
    try:
        first, base, log = owner.stdout.readline().rstrip("\n").split(maxsplit=2)
        pid = int(first)
        assert httpx.get(base + "/healthcheck").json() == {"status": "ok"}
        owner.send_signal(getattr(signal, how))
        owner.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        assert not _alive(pid), f"the simulator outlived its owner ({how})"
    finally:
        owner.kill()
        owner.wait()
        if pid is not None and _alive(pid):  # leave nothing behind when the assertion failed
            os.kill(pid, signal.SIGKILL)
        if log is not None:  # its owner was killed before it could remove it (every suite run left two)
            Path(log).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan is reaped by init; a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stopped_simulator_leaves_no_log_behind_and_a_refused_one_carries_its_log_in_the_error():
    sim = SimulatorProcess(test_takers=5).start()
    assert sim.log_path.exists()
    sim.stop()
    assert not sim.log_path.exists(), "each test and benchmark would leave a jofi-sim-*.log in TMPDIR"
    refused = SimulatorProcess(pagination="pages")
    with pytest.raises(RuntimeError, match="(?s)did not start.*pages"):
        refused.start()
    assert not refused.log_path.exists()


def test_the_log_of_a_simulator_that_died_on_its_own_is_kept_and_named(capsys):
    import os
    import signal

    sim = SimulatorProcess(test_takers=5).start()
    os.kill(sim.pid, signal.SIGKILL)
    sim._proc.wait(timeout=10)
    try:
        sim.stop()
        sim.stop()  # a second stop must not remove what the first kept
        assert sim.log_path.exists()
        assert f"its log is kept: {sim.log_path}" in capsys.readouterr().err
    finally:
        sim.log_path.unlink(missing_ok=True)
