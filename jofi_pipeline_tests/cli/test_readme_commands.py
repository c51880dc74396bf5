"""Every command the README shows runs as written, in a fresh folder, after the quickstart.

The folder looks like a fresh clone (the project's files linked in, no data, no Dagster history)
and `./jofi-pipeline` there is the repo-root wrapper. The README's own `simulate` command provides
the API (on a free port instead of its fixed one); its URL and keys are exported, as the README's
`export` lines say to do with real ones. `uv` is not on PATH. Then every command of the README's
shell blocks and inline command spans runs in reading order, except those `commands.NOT_RUN`
names by pattern, each with its reason. A command added to the README later is picked up as is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer

from jofi_pipeline import settings
from jofi_pipeline_tests.cli.commands import REPO
from jofi_pipeline_tests.cli.commands import Command, not_run_reason, place_wrapper, readme_commands

README = REPO / "README.md"
COMMAND_TIMEOUT_S = 240
# Files a README command reads that the reader brings along (e.g. the ids they already hold).
BROUGHT_BY_THE_READER = ("ids.csv",)


def fresh_folder(root: Path) -> Path:
    """A folder that looks like a clone of the project: its files, a `./jofi-pipeline`, no state."""
    folder = root / "clone"
    folder.mkdir()
    for entry in REPO.iterdir():
        if entry.name.startswith(".") or entry.name in ("data", "jofi-pipeline"):
            continue
        (folder / entry.name).symlink_to(entry)
    place_wrapper(folder)
    return folder


def path_without_uv() -> str:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "uv").exists()]
    return os.pathsep.join(dirs)


def reader_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JOFI_", "DAGSTER_")) and k not in ("COLUMNS", "LINES", "VIRTUAL_ENV")}
    env.update(PATH=path_without_uv(), DAGSTER_DISABLE_TELEMETRY="1", PWD=str(folder))
    assert shutil.which("uv", path=env["PATH"]) is None
    return env


def start_readme_simulator(commands: list[Command], folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, dict]:
    """The README's `simulate` command as written, but on a free port; returns its exported values."""
    shown = [c for c in commands if c.text.startswith(f"{settings.CLI} simulate ")]
    written = next((c.text for c in shown if c.where == "block"), shown[0].text)  # the block, not a passing mention
    args = shlex.split(written)
    if "--port" in args:
        args[args.index("--port") + 1] = "0"
    else:
        args += ["--port", "0"]
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    values: dict[str, str] = {}
    assert proc.stdout is not None
    while len(values) < 3:
        line = proc.stdout.readline()
        assert line, f"`{written}` stopped before printing its URL and keys"
        if "=" in line:
            name, value = line.strip().split("=", 1)
            values[name] = value
    assert set(values) == {settings.ENV_BASE_URL, settings.ENV_LIVE_KEY, settings.ENV_TEST_KEY}, values
    return proc, values


def bring_reader_files(folder: Path, values: dict[str, str]) -> None:
    """ids.csv: a few test takers the account really has, as a customer's own records would."""
    root = values[settings.ENV_BASE_URL].removesuffix("/api/v2")
    truth = httpx.get(f"{root}/_sim/truth", params={"mode": "live"}, timeout=60).json()
    ids = [str(t["id"]) for t in truth["test_takers"][-3:]]
    (folder / "ids.csv").write_text("test_taker_id\n" + "\n".join(ids) + "\n", encoding="utf-8")


@pytest.mark.e2e  # the README's simulator and every command as a process
@pytest.mark.timeout(900)  # three CLI syncs and ~30 commands, each a process: beside three other workers
def test_every_readme_command_runs_as_written(tmp_path):
    commands = readme_commands(README)
    to_run: dict[str, Command] = {}
    for command in commands:  # each distinct command once, where it is first shown
        if not_run_reason(command.text) is None:
            to_run.setdefault(command.text, command)
    assert len(to_run) >= 5, f"the README's commands were not found: {commands}"

    folder = fresh_folder(tmp_path)
    env = reader_env(folder)
    simulator, values = start_readme_simulator(commands, folder, env)
    try:
        env.update(values)
        bring_reader_files(folder, values)
        failures, transcript = [], []
        for command in to_run.values():
            started = time.monotonic()
            result = subprocess.run(["bash", "-c", command.text], cwd=folder, env=env, capture_output=True,
                                    text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
            transcript.append(f"$ {command.text}   # README line {command.line}, exit {result.returncode}, "
                              f"{time.monotonic() - started:.1f}s\n{result.stdout[:600]}{result.stderr[-600:]}")
            broken = result.returncode != 0 or re.search(r"Traceback|command not found|No such file", result.stderr)
            if broken:
                failures.append(f"README line {command.line}: `{command.text}` -> exit {result.returncode}\n"
                                f"{result.stderr[-1500:]}")
        (tmp_path / "transcript.txt").write_text("\n".join(transcript))
        assert not failures, "\n\n".join(failures)
        # The README's simulator serves the account `make demo` synced into ./data, so after the
        # quickstart its commands add to the demo's warehouse instead of mixing in another account.
        assert world(values) == demo_world()
    finally:
        os.killpg(simulator.pid, 15)
        simulator.wait(30)

    ran = " ".join(to_run)
    for essential in ("sync --mode", "status", "sql "):  # the first hour, at least
        assert f"{settings.CLI} {essential}" in ran, f"the README no longer shows `{essential}`"


def world(values: dict[str, str]) -> tuple:
    """What identifies a simulated account: its account object and how many test takers it reports."""
    headers = {"Authorization": f"Bearer {values[settings.ENV_LIVE_KEY]}"}
    base = values[settings.ENV_BASE_URL]
    account = httpx.get(f"{base}/accounts", headers=headers, timeout=60).json()
    listed = httpx.get(f"{base}/test-takers", headers=headers, timeout=60).json()
    return account, listed.get("total_count"), values[settings.ENV_TEST_KEY]


def demo_world() -> tuple:
    """The account of the simulator `make demo` starts (`jofi-pipeline demo` with its defaults)."""
    from jofi_pipeline.cli import app
    from jofi_pipeline.demo import DEMO_SIMULATOR
    from jofi_pipeline.simulator.process import SimulatorProcess

    demo = typer.main.get_command(app).commands["demo"]  # type: ignore[attr-defined]
    test_takers = next(p.default for p in demo.params if p.name == "test_takers")
    with SimulatorProcess(**{**DEMO_SIMULATOR, "test_takers": test_takers}) as sim:
        return world({settings.ENV_BASE_URL: sim.base_url, settings.ENV_LIVE_KEY: sim.live_key,
                      settings.ENV_TEST_KEY: sim.test_key})


def test_commands_not_run_are_named_by_a_pattern_with_a_reason():
    skipped = {c.text: not_run_reason(c.text) for c in readme_commands(README) if not_run_reason(c.text)}
    assert all(reason and len(reason) > 10 for reason in skipped.values())
    # A README command is written with the wrapper, never with a tool that may not be on PATH.
    for command in readme_commands(README):
        assert not re.match(r"(uv|uvx|pip|poetry) ", command.text), f"README line {command.line}: {command.text}"


@pytest.mark.parametrize("written, runs", [
    ("./jofi-pipeline status", True),
    ("./jofi-pipeline watch --mode live --once", True),
    ("./jofi-pipeline watch --mode live", False),
    ("./jofi-pipeline import-ids --kind test-takers FILE --mode live", False),
    ("./jofi-pipeline import-ids --kind profiles|invitations FILE --mode live", False),
    ("make test-fast", False),
    ("./jofi-pipeline describe invitations", True),
    ("./jofi-pipeline report --mode M", False),
    ("./jofi-pipeline simulate --port 8000", False),
    ("./jofi-pipeline simulate --help", True),
    ("./jofi-pipeline webhooks --port 8080", False),
    ("export JOFI_LIVE_API_KEY=sk_live_...", False),
    ("./jofi-pipeline sql \"SELECT * FROM invitation_funnel\" --mode live --format csv", True),
    ("./jofi-pipeline sync --mode live --score-profile JOFI-295-AS", True),
])
def test_the_not_run_patterns_are_narrow(written, runs):
    assert (not_run_reason(written) is None) is runs
