"""Issue 12, item 2: a working database another process holds open is *locked*, not broken.

A lock names its holder (the PID from DuckDB's message, the command from /proc) and never comes
with advice to move the file aside and restore an older copy, which would lose everything fetched
since the last publish; only a file DuckDB calls damaged gets that advice.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from jofi_pipeline.analyst import status_text
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseError, WarehouseStore
from jofi_pipeline.warehouse.diagnose import WarehouseDamagedError, WarehouseLockedError, lock_holder

# A simulator, the CLI or a Dagster run in a process of its own: the end-to-end tier (conftest.py).
pytestmark = pytest.mark.e2e

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _hold_open(path: Path, *, read_only: bool) -> subprocess.Popen:
    """Another process with `path` open in DuckDB (as `sql "ATTACH ..."` or a duckdb shell would)."""
    script = path.parent / "analyst-session-marker.py"
    script.write_text(textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r}, read_only={read_only})
        print("ready", flush=True)
        sys.stdin.readline()
    """))
    holder = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=30)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> WarehouseStore:
    store = WarehouseStore(tmp_path, "live")
    with store.open_run("first", T0) as run:
        run.upsert("teams", [{"id": 1, "name": "A", "mode": "live"}], T0)
    return store


@pytest.mark.parametrize("read_only", [True, False])
def test_a_held_working_database_is_locked_with_its_holder_and_no_restore_advice(store: WarehouseStore, read_only: bool):
    before = _digest(store.work_db_path)
    holder = _hold_open(store.work_db_path, read_only=read_only)
    try:
        with pytest.raises(WarehouseLockedError) as caught:
            store.open_run("second", T0)
    finally:
        _release(holder)
    message = str(caught.value)
    assert f"pid {holder.pid}" in message and "analyst-session-marker" in message  # who holds it, from /proc
    assert "is not damaged" in message and "Close that session" in message
    assert "mv " not in message and "cp " not in message and "broken" not in message
    assert _digest(store.work_db_path) == before
    with store.open_run("third", T0) as run:  # once the session is closed, the next run just works
        assert run.query("SELECT count(*) FROM teams") == [(1,)]


def test_the_sync_reports_the_lock_and_the_lock_only(store: WarehouseStore, tmp_path: Path, simulator, monkeypatch):
    from jofi_pipeline.sync import SyncFailed
    from jofi_pipeline_tests.e2e.helpers import sync

    monkeypatch.setenv("JOFI_LIVE_API_KEY", simulator.live_key)
    holder = _hold_open(store.work_db_path, read_only=True)
    try:
        with pytest.raises(SyncFailed) as caught:
            sync(simulator, "live", tmp_path)
    finally:
        _release(holder)
    assert f"pid {holder.pid}" in caught.value.reason and "mv " not in caught.value.reason


def test_a_damaged_working_database_gets_the_restore_advice(store: WarehouseStore):
    store.work_db_path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(WarehouseDamagedError) as caught:
        store.open_run("second", T0)
    message = str(caught.value)
    assert str(store.work_db_path) in message and "is damaged" in message
    assert f"mv {store.work_db_path} {store.work_db_path}.broken" in message and "--full" in message


def test_a_directory_in_place_of_the_file_is_neither_locked_nor_damaged(store: WarehouseStore):
    store.work_db_path.unlink()
    store.work_db_path.mkdir()
    with pytest.raises(WarehouseError) as caught:
        store.open_run("second", T0)
    assert type(caught.value) is WarehouseError
    assert "mv " not in str(caught.value) and str(store.work_db_path) in str(caught.value)


def test_lock_holder_without_a_pid_in_the_message_is_found_through_proc(tmp_path: Path):
    path = tmp_path / "held.duckdb"
    duckdb.connect(str(path)).close()
    holder = _hold_open(path, read_only=False)
    try:
        described = lock_holder(path, "some lock error without a pid")
    finally:
        _release(holder)
    assert described.startswith(f"pid {holder.pid}: ") and "analyst-session-marker" in described
    assert lock_holder(tmp_path / "nobody-has-this.duckdb").startswith("holder unknown")


def test_a_published_database_held_for_writing_or_damaged_is_one_line_in_status(store: WarehouseStore):
    with store.open_run("publisher", T0) as run:
        run.publish()
    published = PublishedWarehouse("live", store.data_dir)
    holder = _hold_open(published.path, read_only=False)
    try:
        text = status_text(data_dir=store.data_dir)
    finally:
        _release(holder)
    assert f"pid {holder.pid}" in text and "duckdb -readonly" in text
    published.path.resolve().write_bytes(b"garbage" * 1000)
    text = status_text(data_dir=store.data_dir)
    assert "is damaged" in text and "jofi-pipeline sync --mode live" in text
    with store.open_run("repair", T0) as run:  # as the message says: the next publish replaces it whole
        run.publish()
    text = status_text(data_dir=store.data_dir)
    assert "damaged" not in text and "teams=1" in text


def test_a_brief_read_only_peek_by_a_waiting_sync_does_not_fail_the_sync_holding_the_lock(tmp_path):
    """Another process holds the work database read-only for half a second (what a sync waiting for
    the writer lock does to check whose data it is): open_run waits it out instead of failing."""
    store = WarehouseStore(tmp_path, "live")
    store.open_run("r1", datetime.now(UTC)).close()  # the work database exists
    peek = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(store.work_db_path)!r}, read_only=True)
        print("open", flush=True)
        time.sleep(0.5)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert peek.stdout.readline().strip() == "open"
        writer = store.open_run("r2", datetime.now(UTC))  # raised "open by another session" before
        writer.close()
    finally:
        peek.wait(timeout=30)
