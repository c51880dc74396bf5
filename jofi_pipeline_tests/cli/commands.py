"""The shell commands a person is shown (README, the demo's output), and which of them a test runs.

`readme_commands` reads every line of README.md's shell code blocks and every inline command span
(`./jofi-pipeline …`, `make …`, `.venv/bin/…`) in its prose. `not_run_reason` is the explicit list
of commands a test deliberately does not run, by pattern, each with its reason; every other
command is run as written. A command someone adds to the README later is therefore run without
anyone editing a test, unless a pattern here says why not.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SHELL_FENCES = {"sh", "bash", "shell", "console", "zsh"}
INLINE_COMMAND = re.compile(r"`((?:\./jofi-pipeline|make|\.venv/bin/\S+) [^`]*|\./jofi-pipeline|make)`")

# (pattern, why the command is not run). Searched in the command as written; `TEMPLATE` is the
# one rule a regular expression cannot say (a placeholder is a word, not a quoted SQL keyword).
TEMPLATE = "<a placeholder argument>"
NOT_RUN: tuple[tuple[str, str], ...] = (
    (r"^export ", "sets a variable: the test exports the simulator's URL and keys (and a fresh data folder) instead"),
    (r"^make (demo|install)\b", "the quickstart itself: cli/test_cli.py::test_demo_runs_end_to_end_in_a_fresh_folder runs the demo"),
    (r"^make test", "the test suite itself"),
    (r"^make (bench|lock|clean)\b|\bbench/", "benchmarks and maintenance: minutes long, or they change the checkout"),
    (r"(^|\s)(\.venv/bin/)?pytest\b", "the test suite itself"),
    (TEMPLATE, "a template: an argument is a placeholder (FILE, M, <room>, sk_live_..., a|b) to fill in"),
    (r"^(\./jofi-pipeline|\.venv/bin/jofi-pipeline) webhooks\b(?!.*--help)", "a long-running server on a fixed port (webhooks/test_receiver.py serves it)"),
    (r"^\./jofi-pipeline watch\b(?!.*(--once|--help))", "keeps polling until stopped (the --once form is run)"),
    (r"^(\./jofi-pipeline ui\b|(\.venv/bin/)?(dg|dagster) dev\b)(?!.*--help)", "the Dagster UI, a long-running server (dagster/ tests start it)"),
    (r"^\./jofi-pipeline publish-remote\b", "needs an object store (deploy/test_upload_failures.py runs it against one)"),
    (r"^docker\b|^cp deploy/|DAGSTER_HOME|DAGSTER_PG_URL|\bdagster(-daemon)? (job|instance)\b|\bdagster-daemon\b",
     "the production profile: Docker or Postgres (deploy/test_production.py runs the documented commands)"),
    (r"^\./jofi-pipeline simulate\b(?!.*--help)", "a long-running server: the test starts it itself, as written but on a free port"),
)


@dataclass(frozen=True)
class Command:
    text: str   # as written, without a trailing comment
    line: int   # README line number, for messages
    where: str  # 'block' or 'inline'


def readme_commands(readme: Path) -> list[Command]:
    """Every shell command of README.md, in reading order."""
    commands: list[Command] = []
    fence: str | None = None
    pending, start = "", 0
    for number, raw in enumerate(readme.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower() or "text"
            continue
        if fence in SHELL_FENCES:
            line = strip_comment(stripped.removeprefix("$ "))
            if not pending:
                start = number
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            text = (pending + line).strip()
            pending = ""
            if text:
                commands.append(Command(text, start, "block"))
        elif fence is None:
            commands += [Command(m.group(1).strip(), number, "inline") for m in INLINE_COMMAND.finditer(raw)]
    return commands


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` inside quotes or a word is kept)."""
    return _until_unquoted(line, lambda text, i: text[i] == "#" and (i == 0 or text[i - 1].isspace())).rstrip()


def not_run_reason(command: str) -> str | None:
    for pattern, reason in NOT_RUN:
        if has_placeholder(command) if pattern is TEMPLATE else re.search(pattern, command):
            return reason
    return None


PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*|<[^>]+>|.*(\.\.\.|…).*|.*\w\|\w.*|s3://my-bucket.*")


def has_placeholder(command: str) -> bool:
    """An argument (outside quotes) that stands for something: FILE, M, <room>, sk_live_..., a|b."""
    try:
        words = shlex.split(command, posix=False)
    except ValueError:
        return False
    return any(PLACEHOLDER.fullmatch(word) for word in words if word[:1] not in "'\"")


def shown_commands(text: str, prefix: str) -> list[str]:
    """Commands printed in program output: each `prefix …` up to an unquoted backtick, `)` or `;`,
    or the end of its line."""
    found = []
    for line in text.splitlines():
        at = line.find(prefix)
        while at != -1:
            command = _until_unquoted(line[at:], lambda text, i: text[i] in "`);")
            found.append(command.strip().rstrip(".,"))
            at = line.find(prefix, at + len(command))
    return list(dict.fromkeys(found))


def _until_unquoted(text: str, stop: Callable[[str, int], bool]) -> str:
    """`text` up to the first position outside quotes where `stop(text, i)` holds."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif stop(text, i):
            return text[:i]
    return text


def place_wrapper(folder: Path) -> Path:
    """`./jofi-pipeline` in `folder`, handing over to the repo's wrapper (which finds the project's .venv)."""
    wrapper = folder / "jofi-pipeline"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(str(REPO / 'jofi-pipeline'))} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper
