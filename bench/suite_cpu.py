"""Benchmark: where the test suite's CPU goes, per process kind and per test file.

`make test` is CPU-bound on two cores (wall ≈ CPU ÷ 2), and most of its CPU is spent outside the
xdist workers: CLI processes, the zygote's forked CLI children, simulators, `dagster dev` with its
webserver, daemon and code servers, and the run workers those spawn. `/usr/bin/time -v` counts only
what is reaped, and `dagster dev`'s children are not. So this runs pytest (by default as `make test`
does) and, beside it, samples /proc 20 times a second for every process descended from it: its
last CPU (user + sys), its command line and its parent. Each worker also records its own CPU per
test (this file is loaded into the workers as a pytest plugin). A child process is charged to the
test its worker was running when the process was first seen (a module or session fixture's
processes to the test that first asked for it). A process that ends within 50 ms of a sample loses
that much CPU; the sampler's own CPU is printed apart.

    .venv/bin/python bench/suite_cpu.py                          # the whole suite, as `make test`
    .venv/bin/python bench/suite_cpu.py -- -p no:randomly jofi_pipeline_tests/cli/test_cli.py
    .venv/bin/python bench/suite_cpu.py --top 30 -- -n 2 jofi_pipeline_tests/reliability
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
OUT_ENV = "JOFI_SUITE_CPU_DIR"

# Process kinds, first match of the command line wins (the zygote's children share its command line).
KINDS = (
    ("sync child of the zygote", lambda cmd, parent: "harness.zygote" in cmd and "harness.zygote" in parent),
    ("zygote", lambda cmd, parent: "harness.zygote" in cmd),
    ("simulator", lambda cmd, parent: "jofi_pipeline.simulator" in cmd),
    ("dagster run/step worker (spawned)", lambda cmd, parent: "multiprocessing.spawn" in cmd),
    ("dagster code server", lambda cmd, parent: "code-server" in cmd or "api grpc" in cmd),
    ("dagster webserver", lambda cmd, parent: "dagster_webserver" in cmd or "dagster-webserver" in cmd),
    ("dagster daemon", lambda cmd, parent: "_daemon" in cmd or "dagster-daemon" in cmd),
    ("dagster dev / dg", lambda cmd, parent: " dev " in cmd or "/bin/dg " in cmd),
    ("dagster CLI", lambda cmd, parent: "/bin/dagster " in cmd),
    ("jofi-pipeline CLI (and its sync child)", lambda cmd, parent: "jofi-pipeline" in cmd or "jofi_pipeline.cli" in cmd),
    ("postgres", lambda cmd, parent: "postgres" in cmd),
    ("other python", lambda cmd, parent: "python" in cmd),
)


# --- in each xdist worker (or the single pytest process): CPU per test ---------------------------

_log = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # noqa: ARG001
    global _log
    if _log is None:
        _log = open(Path(os.environ[OUT_ENV]) / f"tests-{os.getpid()}.jsonl", "a")
    started, cpu = time.time(), time.process_time()
    yield
    _log.write(json.dumps({"id": item.nodeid, "t0": started, "t1": time.time(),
                           "cpu": time.process_time() - cpu, "pid": os.getpid()}) + "\n")
    _log.flush()


# --- the runner -------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def sample(root: int, seen: dict[int, dict], stop: threading.Event, hz: float = 20.0) -> None:
    """Every process descended from `root`: parent, command line, first sight, last CPU."""
    while not stop.is_set():
        now = time.time()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                ppid, cpu = _stat(pid)
            except (OSError, ValueError, IndexError):
                continue
            if pid in seen:
                seen[pid]["cpu"] = cpu
            elif pid == root or ppid in seen:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                seen[pid] = {"pid": pid, "ppid": ppid, "first": now, "cpu": cpu, "cmd": cmd[:300]}
        stop.wait(1 / hz)


def kind_of(proc: dict, procs: dict[int, dict], workers: set[int], root: int) -> str:
    if proc["pid"] in workers:
        return "pytest worker"
    if proc["pid"] == root:
        return "pytest (controller)"
    parent = procs.get(proc["ppid"], {}).get("cmd", "")
    return next((name for name, test in KINDS if test(proc["cmd"], parent)), "other")


def report(procs: dict[int, dict], tests: list[dict], root: int, top: int) -> None:
    workers = {t["pid"] for t in tests}
    by_worker = collections.defaultdict(list)
    for t in tests:
        by_worker[t["pid"]].append(t)

    def test_at(proc: dict) -> str:
        p, hops = proc, 0
        while p is not None and p["pid"] not in workers and hops < 50:
            p, hops = procs.get(p["ppid"]), hops + 1
        # the test running when the process was first seen; else one that ended just before (a
        # process seen only on the sampler's next pass)
        candidates = by_worker.get(p["pid"] if p else -1, ())
        for t in candidates:
            if t["t0"] <= proc["first"] <= t["t1"]:
                return t["id"]
        for t in candidates:
            if t["t1"] < proc["first"] <= t["t1"] + 0.5:
                return t["id"]
        return "(outside any test)"

    kinds, counts = collections.Counter(), collections.Counter()
    per_test, per_test_kinds = collections.Counter(), collections.defaultdict(collections.Counter)
    for proc in procs.values():
        kind = kind_of(proc, procs, workers, root)
        kinds[kind] += proc["cpu"]
        counts[kind] += 1
        if kind not in ("pytest worker", "pytest (controller)"):
            test = test_at(proc)
            per_test[test] += proc["cpu"]
            per_test_kinds[test][kind] += proc["cpu"]
    for t in tests:
        per_test[t["id"]] += t["cpu"]
        per_test_kinds[t["id"]]["pytest worker"] += t["cpu"]
    in_tests = sum(t["cpu"] for t in tests)
    print(f"CPU-s of the run's processes: {sum(kinds.values()):.1f} ({len(procs)} processes; "
          f"workers: {in_tests:.1f} in tests, {kinds['pytest worker'] - in_tests:.1f} starting, collecting, ending)")
    print(f"{'process kind':<42}{'CPU-s':>8}{'procs':>7}{'each':>7}")
    for kind, cpu in kinds.most_common():
        print(f"{kind:<42}{cpu:>8.1f}{counts[kind]:>7}{cpu / counts[kind]:>7.2f}")
    per_file, per_file_kinds = collections.Counter(), collections.defaultdict(collections.Counter)
    for test, cpu in per_test.items():
        path = test.split("::")[0]
        per_file[path] += cpu
        for kind, c in per_test_kinds[test].items():
            per_file_kinds[path][kind] += c
    for title, totals, split in (("file", per_file, per_file_kinds), ("test", per_test, per_test_kinds)):
        print(f"\ntop {top} by {title} (CPU-s, and its three largest process kinds)")
        for name, cpu in totals.most_common(top):
            parts = ", ".join(f"{k} {c:.1f}" for k, c in split[name].most_common(3))
            print(f"{cpu:7.1f}  {name.removeprefix('jofi_pipeline_tests/')}  [{parts}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("pytest_args", nargs="*", help="after --; default: -n 4 --dist loadfile (as `make test`)")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="jofi-suite-cpu-"))
    env = {**os.environ, OUT_ENV: str(out), "PYTHONDONTWRITEBYTECODE": "", "DAGSTER_DISABLE_TELEMETRY": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]))}
    if os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize >= 4 << 30:
        env["TMPDIR"] = "/dev/shm"  # as the Makefile
    command = [sys.executable, "-m", "pytest", "-p", "suite_cpu", *(args.pytest_args or ["-n", "4", "--dist", "loadfile"])]
    load, started = os.getloadavg(), time.monotonic()
    procs: dict[int, dict] = {}
    stop = threading.Event()
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    sampler = threading.Thread(target=sample, args=(child.pid, procs, stop), daemon=True)
    sampler.start()
    code = child.wait()
    stop.set()
    sampler.join()
    tests = [json.loads(line) for path in glob.glob(str(out / "tests-*.jsonl")) for line in open(path)]
    for path in glob.glob(str(out / "*")):
        os.unlink(path)
    out.rmdir()
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\npytest exited {code} after {time.monotonic() - started:.0f} s; load {load[0]:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"the sampler used {own.ru_utime + own.ru_stime:.1f} CPU-s (not counted)")
    report(procs, tests, child.pid, args.top)
    return code


if __name__ == "__main__":
    sys.exit(main())
