"""Upsert semantics against a real work database: accumulate, shallow merge, counts, children."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import (
    CoverageRecord,
    ModeMismatchError,
    SyncRunRecord,
    UnknownEntityError,
    WarehouseStore,
)
from jofi_pipeline.warehouse import schema
from jofi_pipeline.warehouse.tables import Column, TABLES, TableSpec
from jofi_pipeline_tests.warehouse.conftest import T0, T1, T2

TT = docs.BIG_TEST_TAKER_ID


def snapshot(writer, table: str, exclude=("_last_synced_at",)) -> list[tuple]:
    spec = TABLES[table]
    cols = [c for c in spec.column_names if c not in exclude]
    return writer.query(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL")


def test_insert_then_identical_upsert_changes_nothing_not_even_last_synced(writer):
    first = writer.upsert("test_takers", [docs.test_taker()], T0)
    assert (first["test_takers"].inserted, first["test_taker_assessments"].inserted) == (1, 2)
    before = {t: snapshot(writer, t) for t in ("test_takers", "test_taker_assessments")}

    again = writer.upsert("test_takers", [docs.test_taker()], T1)
    assert (again["test_takers"].inserted, again["test_takers"].updated, again["test_takers"].unchanged) == (0, 0, 1)
    assert (again["test_taker_assessments"].updated, again["test_taker_assessments"].unchanged,
            again["test_taker_assessments"].removed) == (0, 2, 0)
    assert {t: snapshot(writer, t) for t in before} == before
    for table in before:  # a re-read that finds nothing new writes nothing: a quiet night publishes no table again
        assert writer.query(f"SELECT DISTINCT _first_synced_at, _last_synced_at FROM {table}") == [(T0, T0)]


def test_list_item_after_by_id_keeps_detail_fields_and_counts_unchanged(writer):
    writer.upsert("test_takers", [docs.test_taker()], T0)
    counts = writer.upsert("test_takers", [docs.test_taker_list_item()], T1)
    assert counts["test_takers"].unchanged == 1  # only `object`/`mode` differ
    raw = json.loads(writer.query("SELECT _raw FROM test_takers")[0][0])
    assert len(raw["assigned_assessments"]) == 2  # shallow merge kept the by-id field
    assert writer.query("SELECT count(*) FROM test_taker_assessments") == [(2,)]  # key absent: children left alone


def test_changed_field_is_an_update_and_rederives_typed_columns(writer):
    writer.upsert("test_takers", [docs.test_taker()], T0)
    cnp = "CNP1234567890"
    counts = writer.upsert("test_takers", [docs.test_taker_list_item(
        career_navigation_profile_id=cnp, career_navigation_url=f"https://www.careernavigation.org?c={cnp}")], T1)
    assert (counts["test_takers"].updated, counts["test_takers"].unchanged) == (1, 0)
    row = writer.query("SELECT career_navigation_profile_id, _first_synced_at, _last_synced_at, _raw FROM test_takers")[0]
    assert row[:3] == (cnp, T0, T1)
    merged = json.loads(row[3])
    assert merged["career_navigation_profile_id"] == cnp and "assigned_assessments" in merged
    assert merged["object"] == "test_taker_list_item"  # the latest `object` is stored


def test_accumulate_record_that_left_the_window_stays(writer):
    writer.upsert("test_takers", [docs.test_taker_list_item(id=1), docs.test_taker_list_item(id=2)], T0)
    counts = writer.upsert("test_takers", [docs.test_taker_list_item(id=2), docs.test_taker_list_item(id=3)], T1)
    assert (counts["test_takers"].inserted, counts["test_takers"].unchanged) == (1, 1)
    assert writer.query("SELECT id, _last_synced_at FROM test_takers ORDER BY id") == [(1, T0), (2, T0), (3, T1)]


def test_children_replaced_only_when_parent_states_them(writer):
    writer.upsert("test_takers", [docs.test_taker()], T0)
    progressed = docs.test_taker(assignments=[
        docs.assignment(11111, 6, started_at="2026-02-04T10:00:00Z"),      # changed
        docs.assignment(33333, 8),                                          # new; 22222 gone
    ])
    counts = writer.upsert("test_takers", [progressed], T1)["test_taker_assessments"]
    assert (counts.inserted, counts.updated, counts.unchanged, counts.removed) == (1, 1, 0, 1)
    rows = writer.query("SELECT id, started_at IS NOT NULL, _first_synced_at, _last_synced_at FROM test_taker_assessments ORDER BY id")
    assert rows == [(11111, True, T0, T1), (33333, False, T1, T1)]

    emptied = writer.upsert("test_takers", [docs.test_taker(assignments=[])], T2)["test_taker_assessments"]
    assert emptied.removed == 2
    assert writer.query("SELECT count(*) FROM test_taker_assessments") == [(0,)]


def test_children_of_other_parents_untouched(writer):
    writer.upsert("test_takers", [docs.test_taker(id=1, assignments=[docs.assignment(1, 6)]),
                                  docs.test_taker(id=2, assignments=[docs.assignment(2, 6)])], T0)
    writer.upsert("test_takers", [docs.test_taker(id=1, assignments=[])], T1)
    assert writer.query("SELECT id, test_taker_id FROM test_taker_assessments") == [(2, 2)]


def test_scorecards_key_on_short_name_and_replace_scores(writer):
    counts = writer.upsert("scorecards", [docs.scorecard(), docs.scorecard(short_name="JOFI-112-CE")], T0)
    assert counts["scorecards"].inserted == 2 and counts["scorecard_scores"].inserted == 8
    changed = docs.scorecard()
    changed["scores"]["thinking_skills"][0]["facets"][1]["test_taker_score"] = 3.1
    changed["scores"]["personality_traits"] = None
    counts = writer.upsert("scorecards", [changed], T1)
    assert (counts["scorecard_scores"].updated, counts["scorecard_scores"].unchanged, counts["scorecard_scores"].removed) == (1, 2, 1)
    assert writer.query(
        "SELECT count(*) FROM scorecard_scores WHERE score_profile_short_name = 'JOFI-295-AS'") == [(3,)]
    assert writer.query(
        "SELECT test_taker_score FROM scorecard_scores WHERE score_id = 3 AND score_profile_short_name = 'JOFI-295-AS'") == [(3.1,)]


def test_job_fit_report_replaces_occupations(writer):
    writer.upsert("job_fit_reports", [docs.job_fit_report()], T0)
    report = docs.job_fit_report(zones=[{"zone": 1, "occupations": [{"onet_code": "35-2014.00", "title": "Cooks, Restaurant", "fit_score": 0.95}]}])
    counts = writer.upsert("job_fit_reports", [report], T1)
    assert (counts["job_fit_reports"].updated, counts["job_fit_occupations"].updated, counts["job_fit_occupations"].removed) == (1, 1, 2)
    assert writer.query("SELECT zone, onet_code, fit_score FROM job_fit_occupations") == [(1, "35-2014.00", 0.95)]


def test_repeated_key_in_one_batch_is_folded(writer):
    counts = writer.upsert("test_takers", [docs.test_taker(), docs.test_taker_list_item(first_name="Lin")], T0)
    assert counts["test_takers"].inserted == 1 and counts["test_taker_assessments"].inserted == 2
    assert writer.query("SELECT first_name FROM test_takers") == [("Lin",)]


def test_mode_mismatch_writes_nothing(writer):
    good = docs.invitation(id=1)
    bad = docs.invitation(id=2, mode="test")
    with pytest.raises(ModeMismatchError, match="'test'.*'live' warehouse"):
        writer.upsert("invitations", [good, bad], T0)
    assert writer.query("SELECT count(*) FROM invitations") == [(0,)]


@pytest.mark.parametrize("children_write", ["add_children_of_new_parents", "replace_children"])
def test_failure_mid_upsert_rolls_back_everything(writer, monkeypatch, children_write):
    """A new parent's children are added, a known parent's replaced: a failure in either undoes the whole upsert."""
    from jofi_pipeline.warehouse import merge

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    if children_write == "replace_children":
        writer.upsert("test_takers", [docs.test_taker()], T0)
    before = writer.query("SELECT first_name, _last_synced_at FROM test_takers")
    monkeypatch.setattr(merge, children_write, boom)
    with pytest.raises(RuntimeError, match="disk full"):
        writer.upsert("test_takers", [docs.test_taker(first_name="Lin")], T1)
    assert writer.query("SELECT first_name, _last_synced_at FROM test_takers") == before
    assert writer.query("SELECT count(*) FROM test_takers_history WHERE _valid_from = ?", [T1]) == [(0,)]


def test_unknown_entity_is_refused(writer):
    with pytest.raises(UnknownEntityError, match="known: account"):
        writer.upsert("test_taker", [docs.test_taker()], T0)


def test_objects_without_key_are_counted_as_skipped(writer):
    counts = writer.upsert("teams", [docs.team(), docs.team(id=None), "not an object"], T0)
    assert (counts["teams"].inserted, counts["teams"].skipped) == (1, 2)


def test_type_drift_keeps_raw_and_nulls_typed_column(writer):
    writer.upsert("invitations", [docs.invitation(test_taker_id="12345", created_at="soon")], T0)
    row = writer.query("SELECT test_taker_id, created_at, _raw->>'test_taker_id', _raw->>'created_at' FROM invitations")
    assert row == [(None, None, "12345", "soon")]


def test_mark_deleted_keeps_rows_and_upsert_revives(writer):
    writer.upsert("test_takers", [docs.test_taker_list_item(id=1), docs.test_taker_list_item(id=2)], T0)
    assert writer.mark_deleted("test_takers", [1, 999], T1) == 1
    assert writer.mark_deleted("test_takers", [1], T2) == 0  # already marked: first date kept
    assert writer.query("SELECT id, _deleted_at FROM test_takers ORDER BY id") == [(1, T1), (2, None)]
    counts = writer.upsert("test_takers", [docs.test_taker_list_item(id=1)], T2)
    assert counts["test_takers"].updated == 1
    assert writer.query("SELECT _deleted_at FROM test_takers WHERE id = 1") == [(None,)]


def test_mark_deleted_composite_key(writer):
    writer.upsert("scorecards", [docs.scorecard()], T0)
    assert writer.mark_deleted("scorecards", [(TT, "JOFI-295-AS"), (TT, "OTHER")], T1) == 1


def test_every_row_carries_mode_and_sync_times(writer):
    writer.upsert("test_takers", [docs.test_taker()], T0)
    writer.upsert("scorecards", [docs.scorecard()], T0)
    for table in ("test_takers", "test_taker_assessments", "scorecards", "scorecard_scores"):
        assert writer.query(f"SELECT DISTINCT _mode, _first_synced_at, _last_synced_at FROM {table}") == [("live", T0, T0)]


def test_record_run_writes_run_and_coverage_and_redacts_keys(writer):
    run = SyncRunRecord(
        run_id="run-1", started_at=T0, finished_at=T1, status="failed",
        error="401 for key sk_live_abcDEF123 on GET /teams",
        rows_inserted={"test_takers": 3}, rows_updated={"test_takers": 1},
        requests_total=12, requests_by_route={"GET /test-takers": 1, "GET /test-takers/:id": 11},
        coverage=(CoverageRecord("GET /test-takers", "test_takers", 106, 40, True, True, T1),),
    )
    writer.record_run(run)
    writer.record_run(run)  # idempotent per run_id
    rows = writer.query("SELECT status, error, rows_inserted->>'test_takers', requests_total, requests->>'GET /test-takers/:id', json_array_length(coverage) FROM sync_runs")
    assert rows == [("failed", "401 for key sk_live_[redacted] on GET /teams", "3", 12, "11", 1)]
    assert writer.query("SELECT list_route, api_total_count, rows_held, has_more, capped, read_at FROM sync_coverage") == [
        ("GET /test-takers", 106, 40, True, True, T1)]
    assert "abcDEF123" not in str(writer.query("SELECT * FROM sync_runs"))


def test_rows_held(writer):
    writer.upsert("teams", [docs.team(id=1), docs.team(id=2)], T0)
    assert writer.rows_held("teams") == 2


def test_open_run_migrates_new_spec_columns(store: WarehouseStore, monkeypatch):
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team()], T0)
    teams = TABLES["teams"]
    grown = TableSpec(teams.name, teams.kind, teams.comment, teams.key,
                      teams.columns + (Column("color", "VARCHAR", "Team colour (new field)."),),
                      system_columns=teams.system_columns)
    monkeypatch.setitem(TABLES, "teams", grown)
    monkeypatch.setitem(schema.TABLES, "teams", grown)
    with store.open_run("r2", T1) as run:
        assert run.query("SELECT id, color FROM teams") == [(328, None)]
        run.publish()
    assert published_comments(store, "teams")["color"] == "Team colour (new field)."


def test_work_db_lives_under_work_dir(store: WarehouseStore):
    with store.open_run("r1", T0):
        pass
    assert store.work_db_path.parent == store.mode_dir / "work"
    assert store.work_db_path.exists() and not store.published_db_path.exists()
    assert store.published_db_path == Path(store.data_dir) / "live" / "jofi.duckdb"


def published_comments(store: WarehouseStore, table: str) -> dict[str, str]:
    """The published copy's comments of `table` ("" for the table's own): what analysts read.
    (The work database carries none: nobody but the sync reads it, and writing them cost CPU.)"""
    return every_published_comment(store)[table]


def every_published_comment(store: WarehouseStore) -> dict[str, dict[str, str]]:
    """published_comments of every table, from one opening of the file (one per table cost ~1.5 s)."""
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        comments: dict[str, dict[str, str]] = {
            table: {"": own} for table, own in con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall()
        }
        for table, column, comment in con.execute("SELECT table_name, column_name, comment FROM duckdb_columns()").fetchall():
            if table in comments:
                comments[table][column] = comment
    return comments


def test_every_work_table_is_created_and_published_with_its_comments(store: WarehouseStore):
    with store.open_run("r1", T0) as run:
        assert set(dict(run.query("SELECT table_name, comment FROM duckdb_tables() WHERE NOT internal"))) == set(TABLES)
        run.publish()
    published = every_published_comment(store)
    for name, spec in TABLES.items():
        comments = published[name]
        assert all(comments.values()), name
        assert set(comments) == {"", *spec.column_names}, name


@pytest.mark.parametrize(
    ("entity", "obj", "column", "expected_type", "expected"),
    [
        ("account", docs.account(), "webhooks_enabled", "BOOLEAN", True),
        ("users", docs.user(), "default_assessment_ids", "BIGINT[]", [6, 7]),
        ("teams", docs.team(id=1234513245), "id", "BIGINT", 1234513245),
        ("email_templates", docs.email_template(), "team_ids", "BIGINT[]", [178, 328]),
        ("assessments", docs.assessment(8), "display_name", "VARCHAR", "JOFI Career Interests"),
        ("score_profiles", docs.score_profile(), "short_name", "VARCHAR", "JOFI-295-AS"),
        ("invitations", docs.invitation(accepted_at="2026-06-26T11:41:15.44745+00:00"), "accepted_at",
         "TIMESTAMP WITH TIME ZONE", datetime(2026, 6, 26, 11, 41, 15, 447450, tzinfo=UTC)),
        ("career_navigation_profiles", docs.career_navigation_profile("CP1ABC234DEF"), "id", "VARCHAR", "CP1ABC234DEF"),
        ("job_fit_reports", docs.job_fit_report(), "test_taker_id", "BIGINT", docs.BIG_TEST_TAKER_ID),
    ],
)
def test_every_entity_round_trips_through_duckdb(writer, entity, obj, column, expected_type, expected):
    assert writer.upsert(entity, [obj], T0)[entity].inserted == 1
    assert writer.query(f"SELECT {column}, typeof({column}), json_valid(_raw::VARCHAR) FROM {entity}") == [
        (expected, expected_type, True)]


@pytest.mark.e2e  # a fresh interpreter: imports as a real process sees them
def test_warehouse_imports_no_http_dagster_api_or_simulator():
    import subprocess
    import sys

    code = ("import sys, jofi_pipeline.warehouse as w; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('httpx', 'dagster') "
            "or m.startswith(('jofi_pipeline.api', 'jofi_pipeline.simulator', 'jofi_pipeline.defs'))]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_assignment_ids_are_per_test_taker(writer):
    """Assignment ids are unique only per test taker (test mode reuses them): no re-parenting."""
    both = [docs.test_taker(id=1), docs.test_taker(id=2)]  # each with assignments 11111 and 22222
    counts = writer.upsert("test_takers", both, T0)["test_taker_assessments"]
    assert counts.inserted == 4
    expected = [(1, 11111), (1, 22222), (2, 11111), (2, 22222)]
    assert writer.query("SELECT test_taker_id, id FROM test_taker_assessments ORDER BY ALL") == expected

    writer.upsert("test_takers", [docs.test_taker(id=2)], T1)  # one parent alone, later
    assert writer.query("SELECT test_taker_id, id FROM test_taker_assessments ORDER BY ALL") == expected
    progressed = docs.test_taker(id=1, assignments=[docs.assignment(11111, 6, started_at="2026-02-04T10:00:00Z")])
    counts = writer.upsert("test_takers", [progressed], T2)["test_taker_assessments"]
    assert (counts.updated, counts.removed) == (1, 1)
    assert writer.query(
        "SELECT test_taker_id, id, started_at IS NOT NULL, _first_synced_at FROM test_taker_assessments ORDER BY ALL"
    ) == [(1, 11111, True, T0), (2, 11111, False, T0), (2, 22222, True, T0)]


def test_child_keys_include_the_parent_key():
    """Replace-children deletes per parent and merges on the key: the key must name the parent."""
    for spec in TABLES.values():
        if spec.kind == "child":
            assert spec.key[: len(spec.parent_columns)] == spec.parent_columns, spec.name


def test_work_db_written_under_the_old_assignment_key_needs_no_migration(store: WarehouseStore, monkeypatch):
    """The key lives in the MERGE, not in a constraint: an existing work DB takes the new key as is."""
    new = TABLES["test_taker_assessments"]
    old = TableSpec(new.name, new.kind, new.comment, ("id",), new.columns, parent=new.parent,
                    list_key=new.list_key, parent_columns=new.parent_columns, items=new.items,
                    system_columns=new.system_columns)
    with monkeypatch.context() as m:
        m.setitem(TABLES, new.name, old)
        with store.open_run("r1", T0) as run:
            run.upsert("test_takers", [docs.test_taker(id=1)], T0)
    with store.open_run("r2", T1) as run:
        assert run.query("SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
                         "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')", [new.name]) == [(0,)]
        counts = run.upsert("test_takers", [docs.test_taker(id=2)], T1)["test_taker_assessments"]
        assert (counts.inserted, counts.removed) == (2, 0)
        assert run.query("SELECT test_taker_id, id, _first_synced_at FROM test_taker_assessments ORDER BY ALL") == [
            (1, 11111, T0), (1, 22222, T0), (2, 11111, T1), (2, 22222, T1)]
        run.publish()
    assert published_comments(store, new.name)[""].endswith("Key: (test_taker_id, id).")


def _statements(con) -> list[str]:
    """What DuckDB ran on `con` since `CALL enable_logging('QueryLog')`."""
    return [m for (m,) in con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()]


def test_a_new_parent_whose_children_are_in_the_table_all_the_same_has_them_replaced(writer):
    """A test taker the upsert inserts has no assessments yet, so the ones it lists are simply added
    (merge.add_children_of_new_parents). If rows of its are there all the same (its own row was
    deleted by hand), the batch is replaced as for any parent: the one no longer listed goes, the
    one listed again stays, the new one comes; and history says the same."""
    writer.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(2, 7)])], T0)
    writer.con.execute("DELETE FROM test_takers")
    counts = writer.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(3, 8)])], T1)
    assert writer.query("SELECT id FROM test_taker_assessments ORDER BY id") == [(1,), (3,)]
    children = counts["test_taker_assessments"]
    assert (children.inserted, children.removed, children.updated + children.unchanged) == (1, 1, 1)
    assert counts["test_takers"].inserted == 1
    assert writer.query("SELECT id, _valid_from, _valid_to, _is_current, _change FROM test_taker_assessments_history ORDER BY ALL") == [
        (1, T0, None, True, "insert"), (2, T0, T1, False, "insert"), (2, T1, T1, False, "delete"), (3, T1, None, True, "insert")]
    assert writer.query("SELECT count(*) FILTER (WHERE _is_current) FROM test_takers_history") == [(1,)]


def test_a_new_parents_children_are_added_with_the_counts_of_a_replace(writer):
    """New records, new parents' children and their first versions: inserted, never merged."""
    writer.con.execute("CALL enable_logging('QueryLog')")
    counts = writer.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(2, 7)]),
                                           docs.test_taker(8, assignments=[])], T0)
    children = counts["test_taker_assessments"]
    assert (children.inserted, children.updated, children.unchanged, children.removed) == (2, 0, 0, 0)
    assert writer.query("SELECT test_taker_id, id, _first_synced_at FROM test_taker_assessments ORDER BY ALL") == [(7, 1, T0), (7, 2, T0)]
    ran = _statements(writer.con)
    assert any(s.lstrip().startswith('INSERT INTO "test_taker_assessments"') for s in ran)
    assert not [s for s in ran if "MERGE INTO" in s or s.lstrip().startswith(("DELETE", "UPDATE"))], "nothing to merge, delete or close"


def test_a_batch_of_new_records_is_inserted_and_never_duplicates_a_stored_key(writer):
    """merge.merge_entities adds a batch staged all as new with one INSERT. A row staged as new
    whose key is stored after all (a caller that was wrong) is left out, as the MERGE leaves it."""
    from jofi_pipeline.warehouse import merge
    from jofi_pipeline.warehouse.tables import TABLES

    writer.upsert("invitations", [docs.invitation(1, first_name="Stored")], T0)
    staged = writer.con.sql(
        "SELECT * REPLACE ('Again' AS first_name), 'insert' AS _action FROM invitations "
        "UNION ALL SELECT * REPLACE (2 AS id, 'New' AS first_name), 'insert' AS _action FROM invitations"
    ).to_arrow_table()
    writer.con.execute("CALL enable_logging('QueryLog')")
    merge.merge_entities(writer.con, TABLES["invitations"], staged)
    assert writer.query("SELECT id, first_name FROM invitations ORDER BY id") == [(1, "Stored"), (2, "New")]
    assert not [s for s in _statements(writer.con) if "MERGE INTO" in s]
