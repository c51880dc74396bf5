"""Help that fits the terminal, for every command (including ones added later), and `--kind`
spellings from the entity registry."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jofi_pipeline import entities, settings
from jofi_pipeline.cli import app

CLI = str(Path(sys.executable).parent / "jofi-pipeline")
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
CUT = ("…", "...")
# click's usage notation for repeatable arguments (`[ARGS]...`, `FILE...`) is not a cut.
REPEATABLE = re.compile(r"(\]|\b[A-Z_]+)\.\.\.")


def assert_fits(text: str, width: int, what: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, f"{what}: lines wider than {width}: {too_wide}"
    assert not any(mark in REPEATABLE.sub("", text) for mark in CUT), f"{what}: help cut short:\n{text}"


@pytest.mark.parametrize("columns", [80, 60])
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_fits_the_terminal_whole(command, columns):
    # In-process the terminal's width reaches click as the context's terminal_width (what
    # COLUMNS or the tty gives a real process: see the next test).
    result = CliRunner().invoke(app, [*([command] if command else []), "--help"], prog_name=settings.CLI,
                                terminal_width=columns)
    assert result.exit_code == 0, result.output
    assert_fits(result.output, columns, f"{command or 'top-level'} --help at {columns} columns")


@pytest.mark.e2e  # runs the installed command
@pytest.mark.parametrize("columns", [None, "60"])
def test_help_of_the_real_command_fits_a_pipe_and_honours_columns(columns):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns:
        env["COLUMNS"] = columns
    width = int(columns or 80)  # a pipe has no terminal: 80
    for args in (["--help"], ["simulate", "--help"]):
        result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert_fits(result.stdout, width, " ".join(args) + f" with COLUMNS={columns}")
        assert result.stdout.startswith(f"Usage: {settings.CLI} ")
        assert max(len(line) for line in result.stdout.splitlines()) > width - 10  # it uses the width it has
    assert "--test-world-test-takers INTEGER" in result.stdout  # the option name whole


def test_import_kinds_take_both_spellings_and_the_help_lists_them(tmp_path):
    help_text = CliRunner().invoke(app, ["import-ids", "--help"], env={"COLUMNS": "200"}).output
    for entity in entities.ENTITIES.values():
        for kind in entity.import_kinds:
            assert kind in help_text, kind
    ids = tmp_path / "ids.csv"
    ids.write_text("test_taker_id\n101\n102\n", encoding="utf-8")
    for kind, new in (("test-takers", 2), ("test_takers", 0)):
        result = CliRunner().invoke(
            app, ["import-ids", "--kind", kind, str(ids), "--mode", "test", "--data-dir", str(tmp_path / "data")]
        )
        assert result.exit_code == 0, result.output
        assert f"test_takers: {new} new, {2 - new} known, 0 invalid" in result.output


def _message_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are not docstrings: what it prints, logs or raises."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_messages_name_the_command_as_it_is_typed():
    """A hint like `jofi-pipeline sync --mode live` fails on a clone (not on PATH): `./jofi-pipeline`."""
    bare = re.compile(rf"(?<![./\w-])jofi-pipeline ({'|'.join(COMMANDS)})\b")
    package = Path(settings.__file__).parent
    found = [f"{path.relative_to(package)}:{line}: {text.strip()[:90]}"
             for path in sorted(package.rglob("*.py")) for line, text in _message_strings(path) if bare.search(text)]
    assert found == []
