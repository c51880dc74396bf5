"""A sync that runs out of DuckDB's memory says which setting to raise, and loses nothing.

DuckDB's own out-of-memory text suggests SET statements nobody can run inside a sync, and, raised
inside a merge, it used to be hidden behind the follow-on "Current transaction is aborted". The
line a person reads names JOFI_WORK_MEMORY and DuckDB's words; nothing is published; the next sync
with room publishes everything. The setting itself is a parser at a door: anything that is not a
size at least the default is refused before anything is written.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jofi_pipeline import settings
from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.sync import SyncFailed
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.merge import staged
from jofi_pipeline_tests.e2e.helpers import ids, published, truth_ids
from jofi_pipeline_tests.errors.helpers import fast_sync, last_attempt, run_errors
from jofi_pipeline_tests.examples import examples

# Far below what a sync needs, above what opening the work database needs (DuckDB 2.x, 30 test takers).
TOO_LITTLE_BYTES = 6 * 1000**2


@pytest.mark.e2e
def test_out_of_memory_names_the_setting_publishes_nothing_and_the_next_sync_publishes_all(tmp_path, monkeypatch):
    data = tmp_path / "data"
    with SimulatorProcess(test_takers=30, seed=5) as sim:
        monkeypatch.setenv(settings.ENV_LIVE_KEY, sim.live_key)
        with monkeypatch.context() as squeezed:
            squeezed.setattr(settings, "work_memory", lambda: TOO_LITTLE_BYTES)
            with pytest.raises(SyncFailed) as caught:
                fast_sync(sim, "live", data)
        reason = caught.value.reason
        assert f"{settings.ENV_WORK_MEMORY}=128MB" in reason and "e.g. JOFI_WORK_MEMORY=" in reason, reason
        assert "Out of Memory Error" in reason and "run the sync again" in reason, reason
        assert "transaction is aborted" not in reason.lower() and "SET " not in reason, reason
        assert not (data / "live" / "jofi.duckdb").exists()  # nothing published
        assert last_attempt(data, "live").reason == reason
        if (data / "live" / "work" / "jofi_work.duckdb").exists():  # failed in a merge, not at the open
            assert run_errors(data, "live")[caught.value.run_id] == reason

        report = fast_sync(sim, "live", data)  # the default limit: room enough
        assert report.status == "succeeded"
        with published(data, "live") as con:
            assert ids(con, "test_takers") == truth_ids(sim.truth(), "test_takers")


@pytest.mark.e2e
# Other scripts' digits; the Kelvin sign and a dotted capital I, which IGNORECASE alone takes for K and I.
@pytest.mark.parametrize("value", ["lots", "64MB", "2PB", "١٢٨MB", "512\u212aB", "128M\u0130B"])
def test_an_unusable_work_memory_is_refused_before_anything_is_written(tmp_path, monkeypatch, value):
    data = tmp_path / "data"
    with SimulatorProcess(test_takers=3, seed=5) as sim:
        monkeypatch.setenv(settings.ENV_LIVE_KEY, sim.live_key)
        monkeypatch.setenv(settings.ENV_WORK_MEMORY, value)
        with pytest.raises(SyncFailed) as caught:
            fast_sync(sim, "live", data)
    assert caught.value.reason.startswith(f"{settings.ENV_WORK_MEMORY}={value!r} is "), caught.value.reason
    assert caught.value.reason.endswith("; nothing was written"), caught.value.reason
    assert not (data / "live" / "work").exists()


def test_a_set_work_memory_reaches_duckdb(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_WORK_MEMORY, "1GiB")
    with WarehouseStore(tmp_path, "live").open_run("r1", datetime.now(timezone.utc)) as run:
        assert run.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "1.0 GiB"


UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
         "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}


@hypothesis_settings(max_examples=examples(300), deadline=None)
@given(number=st.integers(min_value=0, max_value=10**9 - 1), unit=st.sampled_from(sorted(UNITS)),
       spaced=st.booleans(), case=st.sampled_from([str, str.lower, str.upper]))
def test_a_size_reads_as_its_bytes_or_is_refused_for_its_range(number, unit, spaced, case):
    text = f"{number}{' ' if spaced else ''}{case(unit)}"
    wanted = number * UNITS[unit]
    with pytest.MonkeyPatch.context() as env:
        env.setenv(settings.ENV_WORK_MEMORY, text)
        if settings.MIN_WORK_MEMORY_BYTES <= wanted <= settings.MAX_WORK_MEMORY_BYTES:
            assert settings.work_memory() == wanted
            duckdb.connect().execute(f"SET memory_limit = '{wanted}B'")  # DuckDB takes what we pass it
        else:
            with pytest.raises(ValueError, match=settings.ENV_WORK_MEMORY):
                settings.work_memory()


@hypothesis_settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_size_in_range_or_a_refusal_that_says_what_to_write(text):
    with pytest.MonkeyPatch.context() as env:
        env.setenv(settings.ENV_WORK_MEMORY, text.replace("\x00", ""))
        try:
            value = settings.work_memory()
        except ValueError as exc:
            assert str(exc).startswith(f"{settings.ENV_WORK_MEMORY}="), exc
        else:
            assert settings.MIN_WORK_MEMORY_BYTES <= value <= settings.MAX_WORK_MEMORY_BYTES


def test_a_failed_statement_in_a_staged_block_is_the_error_raised():
    """Not DuckDB's refusal to unregister in the transaction that statement aborted."""
    con = duckdb.connect()
    con.begin()
    with pytest.raises(duckdb.ConversionException):
        with staged(con, pa.table({"a": [1]})) as name:
            con.execute(f"SELECT CAST('x' AS INTEGER) FROM {name}")
    con.rollback()
    with staged(con, pa.table({"a": [2]})) as name:  # the connection goes on
        assert con.execute(f"SELECT a FROM {name}").fetchall() == [(2,)]
