"""A run's inserted/updated totals: each row counted once, however often the run wrote it.

These totals are what `sync_runs.rows_inserted/rows_updated`, the CLI summary and the Dagster
metadata show (the end-to-end agreement is in cli/test_summary_numbers.py).
"""

from __future__ import annotations

import json

import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import FetchRecord, SyncRunRecord, WarehouseStore
from jofi_pipeline_tests.warehouse.conftest import T0, T1, T2


def base(counts: dict) -> dict:
    """The tables these tests write to; history tables (issue 16) are counted too, and tested there."""
    return {table: n for table, n in counts.items() if not table.endswith("_history")}


def totals(writer) -> tuple[dict, dict]:
    counts = writer.tally.counts()
    return base(counts.inserted), base(counts.updated)


def test_a_record_from_the_list_then_by_id_is_one_insert(writer):
    writer.upsert("test_takers", [docs.test_taker_list_item(id=1), docs.test_taker_list_item(id=2)], T0)
    by_id = writer.upsert("test_takers", [docs.test_taker(id=1), docs.test_taker(id=2)], T0)
    assert by_id["test_takers"].updated == 2  # that one write did change the rows...
    inserted, updated = totals(writer)
    assert inserted == {"test_takers": 2, "test_taker_assessments": 4}  # ...but the run inserted them
    assert updated == {}


def test_an_older_record_changed_twice_in_a_run_is_one_update(store: WarehouseStore):
    with store.open_run("r1", T0) as run:
        run.upsert("test_takers", [docs.test_taker(id=1)], T0)
    with store.open_run("r2", T1) as run:
        run.upsert("test_takers", [docs.test_taker_list_item(id=1, email="new@example.com")], T1)
        run.upsert("test_takers", [docs.test_taker(id=1, email="newer@example.com", assignments=[
            docs.assignment(11111, 6, started_at="2026-02-04T10:00:00Z"),
            docs.assignment(22222, 7, started_at="2025-02-03T12:43:31.244+00:00", completed_at="2026-02-03T12:50:36.744Z"),
        ])], T1)
        run.upsert("test_takers", [docs.test_taker(id=1, email="newest@example.com", assignments=[
            docs.assignment(11111, 6, started_at="2026-02-04T11:00:00Z"),
            docs.assignment(22222, 7, started_at="2025-02-03T12:43:31.244+00:00", completed_at="2026-02-03T12:50:36.744Z"),
        ])], T1)
        inserted, updated = totals(run)
    assert inserted == {}
    assert updated == {"test_takers": 1, "test_taker_assessments": 1}


def test_children_of_a_record_new_in_this_run_are_only_inserted(writer):
    writer.upsert("scorecards", [docs.scorecard()], T0)
    rescored = docs.scorecard()
    rescored["scores"]["personality_traits"][0]["test_taker_score"] = 5.0
    assert writer.upsert("scorecards", [rescored], T0)["scorecard_scores"].updated == 1
    inserted, updated = totals(writer)
    assert inserted == {"scorecards": 1, "scorecard_scores": 4}
    assert updated == {}


def test_marking_an_older_record_deleted_is_an_update(store: WarehouseStore):
    with store.open_run("r1", T0) as run:
        run.upsert("invitations", [docs.invitation(id=5), docs.invitation(id=6)], T0)
    with store.open_run("r2", T1) as run:
        assert run.mark_deleted("invitations", [5, 404], T1) == 1
        assert totals(run) == ({}, {"invitations": 1})


def test_fetch_state_rows_count_as_inserted_then_updated(store: WarehouseStore):
    def fetched(at):
        return [FetchRecord("scorecard", docs.BIG_TEST_TAKER_ID, "JOFI-295-AS", "h1", None, "new", "fetched", at)]

    with store.open_run("r1", T0) as run:
        run.upsert("scorecards", [docs.scorecard()], T0, fetched=fetched(T0))
        assert totals(run)[0]["fetch_state"] == 1
    with store.open_run("r2", T1) as run:
        counts = run.upsert("scorecards", [docs.scorecard()], T1, fetched=fetched(T1))
        assert (counts["fetch_state"].inserted, counts["fetch_state"].updated) == (0, 1)
        assert totals(run) == ({}, {"fetch_state": 1})


@pytest.mark.parametrize("children_write", ["add_children_of_new_parents", "replace_children"])
def test_a_write_that_fails_counts_nothing(writer, monkeypatch, children_write):
    """A new test taker's assessments are added, a known one's replaced: either failing counts nothing."""
    from jofi_pipeline.warehouse import merge

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (injected)")

    if children_write == "replace_children":
        writer.upsert("test_takers", [docs.test_taker(id=1)], T0)
    before = totals(writer)
    monkeypatch.setattr(merge, children_write, boom)
    with pytest.raises(RuntimeError, match="injected"):
        writer.upsert("test_takers", [docs.test_taker(id=1, first_name="Lin"), docs.test_taker(id=2)], T1)
    assert totals(writer) == before
    assert writer.query("SELECT count(*) FROM test_takers WHERE id = 2 OR first_name = 'Lin'") == [(0,)]


def test_sync_runs_records_the_tally_and_counts_its_own_rows(writer):
    writer.upsert("test_takers", [docs.test_taker_list_item(id=1)], T0)
    writer.upsert("test_takers", [docs.test_taker(id=1)], T0)
    run = SyncRunRecord(run_id="run-1", started_at=T0, finished_at=T2, status="succeeded")
    first = writer.record_run(run)
    again = writer.record_run(run)  # rewriting the run's own row is still the one insert
    assert first == again
    assert base(first.inserted) == {"sync_runs": 1, "test_taker_assessments": 2, "test_takers": 1}
    stored = writer.query("SELECT rows_inserted, rows_updated FROM sync_runs")
    assert [(json.loads(a), json.loads(b)) for a, b in stored] == [(first.inserted, first.updated)]


def key_objects_held(writer, wanted: set) -> int:
    """How many tuples equal to a key in `wanted` the writer's own state holds (not DuckDB's)."""
    found, seen = 0, set()
    todo = [value for name, value in vars(writer).items() if name not in {"store", "_con", "_lock"}]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, tuple) and obj in wanted:
            found += 1
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo.extend(obj)
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("jofi_pipeline"):
            todo.extend(vars(obj).values())
    return found


def test_a_run_holds_the_keys_it_wrote_as_numbers_not_as_objects(writer):
    """~190,000 keys at 10,000 test takers (the tally's, and history's "versioned this run"): as
    tuples they cost ~25 MB and kept the freed answers' memory arenas alive (keyset.py)."""
    ids = range(1, 41)
    writer.upsert("test_takers", [docs.test_taker_list_item(id=i) for i in ids], T0)
    writer.upsert("test_takers", [docs.test_taker(id=i) for i in ids], T0)  # again: history's long way
    writer.upsert("scorecards", [docs.scorecard(test_taker_id=i) for i in ids], T0)
    wanted = {(i,) for i in ids} | {(i, "JOFI-295-AS") for i in ids}
    assert key_objects_held(writer, wanted) == 0
    assert base(writer.tally.counts().inserted)["test_takers"] == 40
    assert base(writer.tally.counts().inserted)["scorecards"] == 40
