"""Issue 6 end to end: an account whose activity outpaces the capped lists between syncs.

The simulated account starts small (everything fits the lists' windows) and grows to ~500 test
takers over 10 simulated days at ~70 invitations a day, synced every 3-4 days: far more new records
per interval than the 30/50-item windows show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from jofi_pipeline.analyst import status_text
from jofi_pipeline.cli import app
from jofi_pipeline.defs.checks import run_checks
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.e2e.helpers import ids, published, sync, truth_ids
from jofi_pipeline_tests.webhooks.helpers import SECRET, ReceiverThread

CAPPED = ("invitations", "test_takers", "career_navigation_profiles")
ACCOUNT = {"test_takers": 20, "seed": 11, "daily_invitations": 70}
INTERVALS = (3, 3, 4)  # days between syncs: 10 simulated days


@pytest.fixture
def live_env(monkeypatch):
    def apply(sim):
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)

    return apply


def held_vs_truth(sim, data_dir: Path) -> dict[str, tuple[set, set]]:
    truth = sim.truth("live")
    with published(data_dir, "live") as con:
        return {e: (ids(con, e), truth_ids(truth, e)) for e in CAPPED}


def test_with_webhooks_the_warehouse_holds_every_record_after_10_days(make_simulator, live_env, tmp_path):
    sim = make_simulator(**ACCOUNT)
    live_env(sim)
    with ReceiverThread(tmp_path) as receiver:
        sim.set_webhooks(url=receiver.url, secret=SECRET)
        sync(sim, "live", tmp_path)
        for days in INTERVALS:
            summary = sim.advance(days)
            assert len(summary["test_takers_created"]) > 30 * 2  # well beyond the window
            assert sim.flush_webhooks()["flushed"]
            report = sync(sim, "live", tmp_path)
        delivered = sim.webhooks()["stats"]
        assert delivered["gave_up"] == 0 and delivered["delivered"] == delivered["emitted"]
        with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
            assert inbox.unapplied() == []  # every event was applied by a committed sync

    held = held_vs_truth(sim, tmp_path)
    assert len(held["test_takers"][1]) >= 450
    for entity, (have, want) in held.items():
        assert have == want, f"{entity}: {len(want - have)} missing"
    assert all(c.missing == 0 for c in report.coverage)


def test_without_webhooks_coverage_says_exactly_how_many_are_missing_and_import_closes_the_gap(
    make_simulator, live_env, tmp_path
):
    sim = make_simulator(**ACCOUNT)
    live_env(sim)
    sync(sim, "live", tmp_path)
    for days in INTERVALS:
        sim.advance(days)
        report = sync(sim, "live", tmp_path)
    assert sim.webhooks()["stats"]["delivered"] == 0

    held = held_vs_truth(sim, tmp_path)
    coverage = {c.entity: c for c in report.coverage}
    for entity, (have, want) in held.items():
        assert have <= want
        assert coverage[entity].api_total_count == len(want)
        assert coverage[entity].missing == len(want) - len(have)
    assert coverage["test_takers"].missing > 100  # the gap is real, and reported, not silent

    # The published sync_coverage (what `status` and the coverage check read) says the same.
    with published(tmp_path, "live") as con:
        rows = dict(con.execute(
            "SELECT entity, api_total_count - rows_held FROM sync_coverage WHERE run_id = ?", [report.run_id]
        ).fetchall())
    assert {e: rows[e] for e in CAPPED} == {e: len(w) - len(h) for e, (h, w) in held.items()}
    with PublishedWarehouse("live", tmp_path).open() as reader:
        check = next(r for r in run_checks(reader, "live") if r.check_name == "coverage" and r.asset_key.path[-1] == "test_takers")
    meta = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
    assert not check.passed and meta["missing (live)"] == coverage["test_takers"].missing
    assert meta["gap_trend"] == "growing" and len(meta["gap_by_run"].split(",")) == 4
    assert "jofi-pipeline import-ids --kind test-takers FILE --mode live" in meta["what_to_do"]
    assert "import-ids --kind test-takers FILE --mode live" in status_text(data_dir=tmp_path)

    # The customer imports the ids they hold (here: from the truth), with noise: known ids, junk, a repeat.
    runner = CliRunner()
    for kind, entity in (("invitations", "invitations"), ("test-takers", "test_takers"),
                         ("profiles", "career_navigation_profiles")):
        have, want = held[entity]
        missing = sorted(map(str, want - have))
        known = sorted(map(str, have))[:3]
        junk = ["not-an-id"] if entity != "career_navigation_profiles" else ["has space"]
        file = tmp_path / f"{kind}.csv"
        file.write_text("id\n" + "\n".join(missing + known + junk + missing[:1]) + "\n")
        result = runner.invoke(app, ["import-ids", "--kind", kind, str(file), "--mode", "live", "--data-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert f"{len(missing)} new, {len(known) + 1} known, 1 invalid" in result.output

    missing_takers = len(held["test_takers"][1] - held["test_takers"][0])
    assert f"test_takers={missing_takers}" in status_text(data_dir=tmp_path)  # queued, shown by `status`

    report = sync(sim, "live", tmp_path)
    for entity, (have, want) in held_vs_truth(sim, tmp_path).items():
        assert have == want, f"{entity}: {len(want - have)} still missing after the import"
    assert all(c.missing == 0 for c in report.coverage)
