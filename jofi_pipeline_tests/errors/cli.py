"""Running `jofi-pipeline` as a person does (a real process), and reading its one `error:` line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "jofi-pipeline")


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no JOFI_ settings but the data dir, its own Dagster instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOFI_") and k != "DAGSTER_HOME"}
    home = str(Path(data_dir).parent / "dagster_home")
    return {**env, "DAGSTER_DISABLE_TELEMETRY": "1", "DAGSTER_HOME": home, "JOFI_DATA_DIR": str(data_dir), **extra}


def run(args: list[str], env: dict[str, str], *, read_only: Path | None = None, timeout: float = 300,
        ) -> subprocess.CompletedProcess:
    """Run the CLI; with `read_only`, that folder is read-only for the command (see read_only_command)."""
    command = [CLI, *args]
    if read_only is not None:
        command = read_only_command(read_only, command)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def read_only_command(folder: Path, command: list[str]) -> list[str]:
    """`command`, run where `folder` cannot be written.

    Not root: the folder and everything in it lose their write bits. Root ignores those, so the
    command runs in its own mount namespace where the folder is bind-mounted read-only (EROFS),
    as on a read-only volume.
    """
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return command
    unshare = shutil.which("unshare")
    assert unshare, "running as root needs util-linux `unshare` to make a folder read-only for a test"
    quoted = " ".join(_quote(part) for part in command)
    script = f"mount --bind {_quote(str(folder))} {_quote(str(folder))} && " \
             f"mount -o remount,ro,bind {_quote(str(folder))} && exec {quoted}"
    return [unshare, "-m", "sh", "-c", script]


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """`error:` lines on stderr, and in a report on stdout (`status` shows one in the mode's section)."""
    lines = (line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines())
    return [line for line in lines if line.startswith("error:")]


def one_error(result: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command; fails the test on a traceback or a zero exit."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0]


def invoke(args: list[str], env: dict[str, str], monkeypatch, capsys) -> subprocess.CompletedProcess:
    """The CLI's `main()` in this process (argv, environment and exit code as a process would have
    them): the same code path as `run`, without paying an interpreter start per case."""
    from jofi_pipeline import cli

    for name in [n for n in os.environ if n.startswith("JOFI_") or n == "DAGSTER_HOME"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["jofi-pipeline", *args])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["jofi-pipeline", *args], code, out.out, out.err)
