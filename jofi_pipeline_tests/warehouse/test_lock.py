"""One writer per mode: a second open_run of the same mode fails fast, other modes are free."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jofi_pipeline.warehouse import WarehouseBusyError, WarehouseStore
from jofi_pipeline_tests.warehouse.conftest import T0


def test_second_writer_same_mode_is_busy(store: WarehouseStore):
    with store.open_run("first-run", T0):
        with pytest.raises(WarehouseBusyError, match=r"first-run.*wait for that run to finish"):
            store.open_run("second-run", T0)
        with pytest.raises(WarehouseBusyError):
            WarehouseStore(store.data_dir, "live").open_run("third-run", T0)


def test_other_mode_is_free(store: WarehouseStore):
    with store.open_run("live-run", T0):
        with WarehouseStore(store.data_dir, "test").open_run("test-run", T0) as test_run:
            assert test_run.query("SELECT 1") == [(1,)]


def test_lock_released_on_exit_even_after_error(store: WarehouseStore):
    with pytest.raises(RuntimeError), store.open_run("r1", T0):
        raise RuntimeError("sync failed")
    with store.open_run("r2", T0) as run:
        assert run.query("SELECT 1") == [(1,)]


def test_closed_writer_refuses_work(store: WarehouseStore):
    with store.open_run("r1", T0) as run:
        pass
    with pytest.raises(Exception, match="closed"):
        run.query("SELECT 1")


@pytest.mark.e2e  # a second process holds the lock
def test_lock_held_by_another_process(store: WarehouseStore, tmp_path: Path):
    script = textwrap.dedent(f"""
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        from jofi_pipeline.warehouse import WarehouseStore
        run = WarehouseStore(Path({str(store.data_dir)!r}), "live").open_run("other-process", datetime.now(UTC))
        print("ready", flush=True)
        sys.stdin.readline()
        run.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseBusyError, match="other-process"):
            store.open_run("mine", T0)
    finally:
        holder.communicate("\n", timeout=30)
    with store.open_run("mine", T0) as run:
        assert run.query("SELECT 1") == [(1,)]


def test_the_work_database_hands_freed_memory_back(writer):
    """DuckDB's allocator flushes what queries freed after any query past 16 MB (its default waits
    for 128 MB) and purges in the background: what kept a large sync's peak memory up."""
    flush, background = writer.con.execute(
        "SELECT current_setting('allocator_flush_threshold'), current_setting('allocator_background_threads')"
    ).fetchone()
    assert (flush, background) == ("16MB", True)


def test_a_run_merges_with_one_duckdb_thread_and_publishes_with_all(store, monkeypatch):
    """While a run fetches, the event loop's thread and the merge's thread keep the cores busy, and
    DuckDB's own workers only competed with them; the publish runs alone and gets every core back."""
    import duckdb

    from jofi_pipeline.warehouse import store as store_module

    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]
    seen_at_publish = []
    real_publish = store_module.publish

    def spying_publish(con, *args, **kwargs):
        seen_at_publish.append(con.execute("SELECT current_setting('threads')").fetchone()[0])
        return real_publish(con, *args, **kwargs)

    monkeypatch.setattr(store_module, "publish", spying_publish)
    with store.open_run("threads", T0) as run:
        assert run.query("SELECT current_setting('threads')") == [(1,)]
        run.publish()
    assert seen_at_publish == [default]
