"""The numbers a sync shows agree wherever they are shown.

`jofi-pipeline sync` runs the real `jofi_sync` job in-process (what `sync_mode` does); its summary
is built from the Dagster materialization metadata, and `sync_runs` records the same run. Here a
real simulator, real DuckDB and a real Dagster run check that the summary, the metadata and
`sync_runs` say the same thing, that the rows add up, and that each duration is named once.
"""

from __future__ import annotations

import io
import json
import re

import dagster as dg
import duckdb
import pytest

from jofi_pipeline import settings
from jofi_pipeline.runs import SyncOutcome, print_summary, sync_mode
from jofi_pipeline.sync.report import Coverage, SyncReport, capped_window_note, utc_now
from jofi_pipeline.warehouse.tables import TABLES


@pytest.fixture
def live(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=60, seed=11)
    monkeypatch.setenv(settings.ENV_BASE_URL, sim.base_url)
    monkeypatch.setenv(settings.ENV_LIVE_KEY, sim.live_key)
    monkeypatch.setenv(settings.ENV_DATA_DIR, str(tmp_path / "data"))
    return sim


def run_and_read(tmp_path) -> tuple[SyncOutcome, str, dict, dict[str, int]]:
    outcome = sync_mode("live", instance=dg.DagsterInstance.ephemeral())
    out = io.StringIO()
    print_summary(outcome, out)
    with duckdb.connect(str(tmp_path / "data" / "live" / "jofi.duckdb"), read_only=True) as con:
        run = con.execute(
            "SELECT rows_inserted, rows_updated, epoch(finished_at - started_at), requests_total FROM sync_runs "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}
    recorded = {"inserted": json.loads(run[0]), "updated": json.loads(run[1]), "seconds": run[2], "requests": run[3]}
    return outcome, out.getvalue(), recorded, rows


def summary_rows(text: str) -> dict[str, tuple[int, int, int]]:
    """table -> (rows, inserted, updated), read back from the printed summary table."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in TABLES and all(p.isdigit() for p in parts[1:]):
            found[parts[0]] = tuple(int(p) for p in parts[1:])
    return found


def test_summary_metadata_and_sync_runs_agree_and_add_up(live, tmp_path):
    first, text, recorded, rows = run_and_read(tmp_path)
    printed = summary_rows(text)
    assert set(printed) == set(TABLES)
    for table in TABLES:
        meta = first.tables[table]  # the Dagster materialization metadata
        assert printed[table] == (meta.rows, meta.inserted, meta.updated) == (
            rows[table], recorded["inserted"].get(table, 0), recorded["updated"].get(table, 0)), table
        # A first sync into an empty warehouse inserted every row it holds, and updated none.
        assert (meta.inserted, meta.updated) == (rows[table], 0), table

    # One duration per thing measured, named, and the parts make up the whole.
    assert first.fetch_and_merge_seconds == pytest.approx(recorded["seconds"], abs=0.002)
    assert first.requests == recorded["requests"] > 0
    (time_line,) = [line for line in text.splitlines() if line.startswith("time:")]
    parts = [float(x) for x in re.findall(r"(\d+\.\d)s", time_line)]
    assert len(parts) == 5 and sum(parts[:4]) == pytest.approx(parts[4], abs=0.01), time_line  # as printed
    for name in ("start-up", "fetch and merge", "publish", "Dagster run and checks"):
        assert name in time_line
    assert len(re.findall(r"\d+\.\ds", text)) == 5, "a duration printed outside the time line"

    # The capped lists hold less than the API reports: one line says so and names the three ways.
    (note,) = [line for line in text.splitlines() if "JOFI's lists show only" in line]
    for entity in ("invitations", "test_takers"):
        held = re.search(rf"{entity} (\d+) of (\d+)", note)
        assert held and int(held[1]) == rows[entity] < int(held[2]), note
    for way in (f"{settings.CLI} webhooks", f"{settings.CLI} watch --mode live", f"{settings.CLI} import-ids"):
        assert way in note

    live.advance(2)
    second, text, recorded, after = run_and_read(tmp_path)
    for table, spec in TABLES.items():
        meta = second.tables[table]
        assert (meta.inserted, meta.updated) == (recorded["inserted"].get(table, 0), recorded["updated"].get(table, 0))
        assert summary_rows(text)[table] == (after[table], meta.inserted, meta.updated)
        if spec.kind != "child":  # records are never dropped: what a table gained is what the run inserted
            assert after[table] == rows[table] + meta.inserted, table
        assert meta.updated <= rows[table], table  # only rows held before the run can be updated
    assert second.tables["sync_runs"].inserted == 1
    assert second.tables["invitations"].inserted + second.tables["invitations"].updated > 0


def test_the_gap_note_is_only_for_capped_lists_short_of_the_api_total():
    report = SyncReport(run_id="r", mode="test", started_at=utc_now())
    report.coverage = [
        Coverage("invitations", 260, 50, has_more=True, capped=True),   # the documented window
        Coverage("test_takers", 100, 100, has_more=True, capped=True),   # gap closed by id fetches
        Coverage("teams", 5, 5, has_more=False, capped=False),
        Coverage("users", None, 4, has_more=False, capped=False),        # no total: nothing to say
    ]
    assert [c.entity for c in report.gaps] == ["invitations"]
    note = capped_window_note("test", [("invitations", 50, 260)])
    assert "\n" not in note and "invitations 50 of 260" in note
    assert "--kind invitations " in note and "--mode test" in note and "live mode only" in note
