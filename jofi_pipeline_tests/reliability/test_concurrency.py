"""Two syncs of one mode at once: one runs, the other exits with a clear message; readers query
the published database the whole time without a single error."""

from __future__ import annotations

import threading

import duckdb

from jofi_pipeline_tests.reliability.conftest import cli_env
from jofi_pipeline.harness.crash import SYNC
from jofi_pipeline_tests.reliability.helpers import observe


READ_EVERY_S = 0.01


def test_second_sync_of_a_mode_exits_clearly_while_readers_keep_reading(sim, zygote, tmp_path):
    env = cli_env(sim, tmp_path)
    # A CLI sync first, not a copy of a folder synced in this process: it also sets the Dagster
    # instance's storage up, so the two syncs below meet only at the writer's lock.
    assert zygote.run(SYNC, env)[0] == 0
    published = tmp_path / "live" / "jofi.duckdb"
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_loop() -> None:
        nonlocal reads
        # A read every READ_EVERY_S, not back to back: a reader that never paused kept a core busy for
        # the whole test and starved the two syncs it is meant to watch.
        while not stop.wait(READ_EVERY_S):
            try:
                with duckdb.connect(str(published), read_only=True) as con:
                    con.execute("SELECT count(*) FROM test_takers JOIN sync_runs ON true").fetchone()
                reads += 1
            except Exception as exc:  # any error at all is a failure of the publish design
                errors.append(f"{type(exc).__name__}: {exc}")

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        sim.set_faults(latency_ms=15)  # long enough runs that the two surely overlap
        sim.advance(1)
        first = zygote.start(SYNC, env)
        second = zygote.start(SYNC, env)
        codes = [zygote.wait(first[0]), zygote.wait(second[0])]
        texts = [first[2].read_text(), second[2].read_text()]
        sim.clear_faults()
        assert zygote.run(SYNC, env)[0] == 0, "the lock is free again afterwards"
    finally:
        stop.set()
        reader.join()
    assert sorted(codes) == [0, 1], (codes, texts)
    loser = texts[codes.index(1)]
    assert "error: live sync failed: the 'live' warehouse is being written by another sync" in loser
    assert "Traceback" not in loser
    assert not errors, errors[:3]
    assert reads > 20, f"the reader must have been reading throughout ({reads} reads)"
    observe(tmp_path / "live")
