"""Bad configuration: one actionable `error: ...` line, exit code 1, no traceback, nothing written
or lost. A corrupt published file is replaced by the next sync (publish never reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jofi_pipeline_tests.e2e.helpers import sync
from jofi_pipeline_tests.folder_copies import copy_of, named_for
from jofi_pipeline_tests.reliability.conftest import cli_env
from jofi_pipeline.harness.crash import SYNC
from jofi_pipeline_tests.reliability.helpers import data_dir_files, observe

CASES = {
    "missing key": ({"JOFI_LIVE_API_KEY": None}, "set JOFI_LIVE_API_KEY"),
    "empty key": ({"JOFI_LIVE_API_KEY": "  "}, "set JOFI_LIVE_API_KEY"),
    "test key for live": ({"JOFI_LIVE_API_KEY": "test"}, "check JOFI_LIVE_API_KEY"),
    "malformed base URL": ({"JOFI_API_BASE_URL": "jofi.example/api"}, "JOFI_API_BASE_URL"),
    "unreachable base URL": ({"JOFI_API_BASE_URL": "http://127.0.0.1:9/api/v2"}, "JOFI_API_BASE_URL"),
    "unwritable data dir": ({"JOFI_DATA_DIR": "FILE/data"}, "writable directory"),
}


def assert_one_clear_line(code: int, err: str, hint: str) -> None:
    assert code == 1
    assert "Traceback" not in err and "dagster._core" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and hint in errors[0], err
    assert [line for line in err.splitlines() if not line.startswith("error: ")] == [
        line for line in err.splitlines() if " live: " in line
    ], "besides progress lines, only the error line"


@pytest.mark.parametrize(("change", "hint"), CASES.values(), ids=CASES.keys())
def test_bad_config_is_one_actionable_line_and_writes_nothing(sim, zygote, tmp_path, change, hint):
    data_dir = tmp_path / "data"
    (tmp_path / "FILE").write_text("not a directory")
    env = cli_env(sim, data_dir)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        elif value == "test":
            env[name] = sim.test_key
        else:
            env[name] = value.replace("FILE", str(tmp_path / "FILE"))
    sim.reset_stats()
    code, out, err = zygote.run(SYNC, env)
    assert_one_clear_line(code, err, hint)
    assert not data_dir.exists() or not data_dir_files(data_dir), "nothing may be written"
    if "key" in hint.lower() or "KEY" in hint:
        assert sim.stats()["total"] == 0, "a bad key is refused before any request"


def synced_once(sim, into: Path) -> Path:
    """`into` as a copy of a data folder synced once (in this process, no Dagster run) from the
    module's simulator: the first sync is not these tests' subject, what they do to it is."""
    return copy_of(named_for("bad-config-synced", sim), lambda data: sync(sim, "live", data), into)


def test_corrupt_published_file_is_replaced_by_the_next_sync(sim, zygote, tmp_path):
    tmp_path = synced_once(sim, tmp_path / "data")
    env = cli_env(sim, tmp_path)
    published = (tmp_path / "live" / "jofi.duckdb").resolve()
    published.write_bytes(b"\x00garbage" * 512)
    code, _, err = zygote.run(["sql", "SELECT 1", "--mode", "live"], env)
    assert code == 1 and err.startswith("error: the published live database") and "is damaged" in err
    assert "sync --mode live" in err and "Traceback" not in err
    code, out, err = zygote.run(SYNC, env)
    assert code == 0, err
    assert observe(tmp_path / "live") is not None
    code, out, _ = zygote.run(["sql", "SELECT count(*) AS runs FROM sync_runs", "--mode", "live", "-f", "csv"], env)
    assert code == 0 and out.split() == ["runs", "2"], "history kept: it lives in the work database"


def test_corrupt_working_database_says_exactly_how_to_recover(sim, zygote, tmp_path):
    tmp_path = synced_once(sim, tmp_path / "data")
    env = cli_env(sim, tmp_path)
    before = observe(tmp_path / "live")
    (tmp_path / "live" / "work" / "jofi_work.duckdb").write_bytes(b"\x00garbage" * 512)
    code, _, err = zygote.run(SYNC, env)
    assert_one_clear_line(code, err, "restore it from the published copy")
    assert observe(tmp_path / "live") == before, "the published warehouse is untouched"
