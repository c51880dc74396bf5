"""History against the simulator's clock: days go by, records change, one is deleted and comes
back; the version chains must be exactly the world as each sync saw it. A full refresh and a
one-profile backfill must add nothing, and the test mode keeps its own history."""

from __future__ import annotations

import json

import pytest

from jofi_pipeline.settings import ENV_BASE_URL, ENV_DATA_DIR, ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.warehouse.flatten import content
from jofi_pipeline.warehouse.tables import HISTORY
from jofi_pipeline_tests.e2e.helpers import published, sync
from jofi_pipeline.harness.history_oracle import chain_problems, chains, disagreements, versions

DAYS = 2  # 37 records change over two days (seed 21), the check asks for 5


@pytest.fixture
def sim(make_simulator, monkeypatch, tmp_path):
    """A small world with cursor paging, so every record is reachable and the truth comparable."""
    sim = make_simulator(test_takers=15, seed=21, pagination="cursor")
    monkeypatch.setenv(ENV_LIVE_KEY, sim.live_key)
    monkeypatch.setenv(ENV_TEST_KEY, sim.test_key)
    monkeypatch.setenv(ENV_BASE_URL, sim.base_url)
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    return sim


def expected_chain(seen: list, entity: str, id, deleted_in: set[str]) -> list[tuple]:
    """(content, run id, change) per version: the truth after each run, repeats collapsed."""
    chain: list[tuple] = []
    for report, truth in seen:
        obj = next((o for o in truth[entity] if o["id"] == id), None)
        if obj is None:
            continue
        if report.run_id in deleted_in:
            if chain and chain[-1][2] != "delete":
                chain.append((chain[-1][0], report.run_id, "delete"))
            continue
        now = content(obj)
        if chain and chain[-1][0] == now and chain[-1][2] != "delete":
            continue
        change = "update" if chain and chain[-1][2] != "delete" else "insert"
        chain.append((now, report.run_id, change))
    return chain


def test_versions_follow_the_world_day_by_day_and_a_deleted_record_closes(sim, tmp_path):
    seen = []

    def run(**options):
        report = sync(sim, "live", tmp_path, **options)
        seen.append((report, sim.truth("live")))
        return report

    run()
    for _ in range(DAYS):
        sim.advance(1)
        run()
    open_takers = [t["id"] for t in seen[-1][1]["test_takers"] if any(not a["completed_at"] for a in t["assigned_assessments"])]
    victim = open_takers[0]
    sim.set_faults(not_found_ids=[victim])
    sim.advance(1)
    deleted_in = {run().run_id}
    with published(tmp_path, "live") as con:
        before_full = versions(con)

    # Nothing changed at JOFI: a full refresh and a one-profile backfill add no version.
    full = run(full_refresh=True)
    profile = seen[-1][1]["score_profiles"][0]["short_name"]
    backfill = run(score_profiles=(profile,))
    deleted_in |= {full.run_id, backfill.run_id}  # the victim still answers 404
    for report in (full, backfill):
        assert {t: n for t, n in report.inserted.items() if t.endswith("_history") and n} == {}, report.run_id
    with published(tmp_path, "live") as con:
        assert versions(con) == before_full

    sim.clear_faults()
    back = run()  # the victim answers again
    with published(tmp_path, "live") as con:
        assert chain_problems(con) == []
        assert disagreements(con) == []
        got = chains(con, "test_takers")
        assert [v["_change"] for v in got[(victim,)]][-2:] == ["delete", "insert"]
        assert got[(victim,)][-1]["_sync_run_id"] == back.run_id
        changed = 0
        for entity in ("invitations", "test_takers", "career_navigation_profiles"):
            held = chains(con, entity)
            ids = {o["id"] for _, truth in seen for o in truth[entity]}
            assert {k[0] for k in held} == ids, entity
            for id in ids:
                expected = expected_chain(seen, entity, id, deleted_in if id == victim and entity == "test_takers" else set())
                actual = [(content(json.loads(v["_raw"])), v["_sync_run_id"], v["_change"]) for v in held[(id,)]]
                assert actual == expected, (entity, id)
                changed += len(expected) > 1
        assert changed >= 5, "the days must have changed some records"
        # each version opened while the run that saw it was running
        runs = {r.run_id: r for r, _ in seen}
        for hist in HISTORY.values():
            for run_id, first, last in con.execute(
                f"SELECT _sync_run_id, min(_valid_from), max(_valid_from) FROM {hist.name} GROUP BY ALL"
            ).fetchall():
                assert runs[run_id].started_at <= first <= last <= runs[run_id].finished_at, hist.name


def test_the_test_mode_keeps_its_own_history_and_a_second_sync_adds_nothing(sim, tmp_path):
    first = sync(sim, "test", tmp_path)
    second = sync(sim, "test", tmp_path)
    assert first.inserted["test_takers_history"] > 0
    assert {t: n for t, n in second.inserted.items() if t.endswith("_history") and n} == {}
    with published(tmp_path, "test") as con:
        assert chain_problems(con) == [] and disagreements(con) == []
        for hist in HISTORY.values():
            assert con.execute(f"SELECT DISTINCT _mode FROM {hist.name}").fetchall() in ([], [("test",)]), hist.name
            assert con.execute(f"SELECT DISTINCT _sync_run_id FROM {hist.name}").fetchall() in ([], [(first.run_id,)])
    assert not (tmp_path / "live").exists()
