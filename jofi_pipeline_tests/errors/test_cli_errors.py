"""Issue 12, item 4: every command fails on bad config, bad files or bad input with one `error:`
line that names the file or value and says what to do, exits non-zero, and never shows a traceback
(unless asked to, with --debug)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jofi_pipeline.warehouse import ModePaths, WarehouseStore
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.errors.cli import base_env, invoke, one_error, run
from jofi_pipeline_tests.folder_copies import copy_of

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A published live warehouse (one test taker) and a live inbox, as a first sync leaves them:
    a copy of the folder this process made first (folder_copies.py); each test damages its own."""
    return copy_of("cli-errors-data", _seed, tmp_path / "data")


def _seed(root: Path) -> None:
    with WarehouseStore(root, "live").open_run("seed", T0) as run_:
        run_.upsert("test_takers", [{"id": 7, "mode": "live", "first_name": "A"}], T0)
        run_.publish()
    with Inbox.open(ModePaths(root, "live").inbox) as inbox:
        inbox.add_imported("test_takers", ["8"])


def _ids_file(tmp_path: Path, text: str = "id\n11\n12\n") -> Path:
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_ids_into_a_read_only_data_dir(data: Path, tmp_path: Path):
    line = one_error(run(["import-ids", str(_ids_file(tmp_path)), "--kind", "test-takers"], base_env(data), read_only=data))
    assert str(ModePaths(data, "live").inbox) in line
    assert "writable" in line and "JOFI_DATA_DIR" in line
    with Inbox.open(ModePaths(data, "live").inbox) as inbox:  # nothing was lost or half-written
        assert inbox.counts() == {"test_takers": 1}


def test_status_and_sql_with_a_damaged_published_database(data: Path, monkeypatch, capsys):
    ModePaths(data, "live").published_db.resolve().write_bytes(b"not a database" * 500)
    status = invoke(["status"], base_env(data), monkeypatch, capsys)
    line = one_error(status)
    assert str(ModePaths(data, "live").published_db) in line and "is damaged" in line
    assert "jofi-pipeline sync --mode live" in line
    assert "== test" in status.stdout  # the other mode is still reported
    line = one_error(invoke(["sql", "SELECT 1"], base_env(data), monkeypatch, capsys))
    assert "is damaged" in line and "jofi-pipeline sync --mode live" in line


@pytest.mark.parametrize(
    "args",
    [["status"], ["import-ids", "{ids}", "--kind", "test-takers"], ["webhooks", "--port", "0"], ["watch", "--mode", "live", "--once"]],
    ids=["status", "import-ids", "webhooks", "watch"],
)
def test_a_damaged_inbox_is_named_with_what_to_do(data: Path, tmp_path: Path, args: list[str], simulator, monkeypatch, capsys):
    inbox = ModePaths(data, "live").inbox
    for leftover in inbox.parent.glob("events.sqlite-*"):
        leftover.unlink()
    inbox.write_bytes(b"garbage, not SQLite\n" * 50)
    env = base_env(data, JOFI_WEBHOOK_SECRET="whsec_test", **simulator.env())
    line = one_error(invoke([a.replace("{ids}", str(_ids_file(tmp_path))) for a in args], env, monkeypatch, capsys))
    assert f"the inbox {inbox} is damaged" in line and f"mv {inbox} {inbox}.broken" in line


def test_sync_names_the_damaged_inbox(data: Path, simulator):
    inbox = ModePaths(data, "live").inbox
    for leftover in inbox.parent.glob("events.sqlite-*"):
        leftover.unlink()
    inbox.write_bytes(b"garbage, not SQLite\n" * 50)
    env = base_env(data, **simulator.env())
    line = one_error(run(["sync", "--mode", "live"], env))
    assert line.startswith("error: live sync failed: the inbox ") and str(inbox) in line and "file is not a database" in line


def test_an_unknown_schedule_timezone_warns_and_falls_back_to_utc(data: Path, monkeypatch, capsys):
    env = base_env(data, JOFI_SCHEDULE_TIMEZONE="Mars/Olympus")
    status = invoke(["status"], env, monkeypatch, capsys)
    assert status.returncode == 0 and "Traceback" not in status.stderr
    (warning,) = [line for line in status.stderr.splitlines() if line.startswith("warning:")]
    assert "JOFI_SCHEDULE_TIMEZONE='Mars/Olympus'" in warning and "UTC" in warning
    loaded = subprocess.run(
        [sys.executable, "-c", "from jofi_pipeline.runs import load_definitions as d; "
         "s = d().resolve_schedule_def('jofi_nightly_live'); print(s.execution_timezone); print(s.description)"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    timezone, description = loaded.stdout.strip().splitlines()[-2:]
    assert timezone == "UTC" and "Mars/Olympus" in description


def test_one_bad_id_is_one_invalid_line_and_the_rest_is_queued(data: Path, tmp_path: Path, monkeypatch, capsys):
    def run(args, env):
        return invoke(args, env, monkeypatch, capsys)

    ids = _ids_file(tmp_path, "id\n21\n\u00b2\n22\n")
    result = run(["import-ids", str(ids), "--kind", "test-takers"], base_env(data))
    assert result.returncode == 0, result.stderr
    assert "2 new, 0 known, 1 invalid" in result.stdout and "line 3: '\u00b2'" in result.stdout
    utf16 = tmp_path / "ids16.csv"
    utf16.write_text("id\n31\n", encoding="utf-16")  # as a spreadsheet's "Unicode text" export
    assert "1 new" in run(["import-ids", str(utf16), "--kind", "test-takers"], base_env(data)).stdout
    # A line in another encoding is one invalid line (decoded line by line), the rest is queued.
    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"id\n\xff\xfe\xfa41\n42\n")
    result = run(["import-ids", str(binary), "--kind", "test-takers"], base_env(data))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "1 new, 0 known, 1 invalid (e.g. line 2: not UTF-8 text)" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["sync", "--mode", "prod"], "unknown mode 'prod'"),
        (["sync", "--mode", "live", "--concurrency", "0"], "--concurrency"),
        (["sql", "SELECT 1", "--format", "xml"], "'xml' is not one of"),
        (["sql", "SELECT 1", "--max-rows", "0"], "--max-rows"),
        (["watch", "--mode", "live", "--interval", "5x"], "interval '5x'"),
        (["import-ids", "/nonexistent/ids.csv", "--kind", "test-takers"], "/nonexistent/ids.csv"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_options_are_one_line_naming_the_value(data: Path, args: list[str], named: str, monkeypatch, capsys):
    result = invoke(args, base_env(data), monkeypatch, capsys)
    line = one_error(result)
    assert result.returncode == 2 and named in line and "--help" in line


def test_a_file_where_the_data_dir_should_be(tmp_path: Path, monkeypatch, capsys):
    root = tmp_path / "data"
    root.write_text("oops")
    line = one_error(invoke(["status"], base_env(root), monkeypatch, capsys))
    assert str(root) in line and "is a file, not a folder" in line
    line = one_error(invoke(["import-ids", str(_ids_file(tmp_path)), "--kind", "test-takers"], base_env(root), monkeypatch, capsys))
    assert str(root) in line and "JOFI_DATA_DIR" in line


def test_a_sync_into_a_file_where_the_data_dir_should_be(tmp_path: Path, simulator, monkeypatch, capsys):
    """The CLI's writer-lock probe looks under the data dir before the run: a file there is the sync's to explain."""
    root = tmp_path / "data"
    root.write_text("oops")
    line = one_error(invoke(["sync", "--mode", "live"], base_env(root, **simulator.env()), monkeypatch, capsys))
    assert line.startswith("error: live sync failed: ") and str(root) in line and "JOFI_DATA_DIR" in line, line
    assert root.read_text() == "oops"


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path: Path):
    def broken(**_):
        raise RuntimeError("something nobody planned for\nsecond line")

    monkeypatch.setattr("jofi_pipeline.analyst.status_report", broken)
    result = invoke(["status"], base_env(tmp_path), monkeypatch, capsys)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unexpected RuntimeError: something nobody planned for (run again with --debug for the traceback)"
    )
    with pytest.raises(RuntimeError, match="nobody planned"):
        invoke(["--debug", "status"], base_env(tmp_path), monkeypatch, capsys)
