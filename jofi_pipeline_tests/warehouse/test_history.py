"""History tables at the store's level, on handmade objects: exact version chains for inserts,
updates, unchanged re-reads, list-item/by-id shapes, deletes and reappearance, child rows, the start
from a warehouse built before history, and the as-of macros and funnel timings in the published file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.tables import HISTORY, TABLES
from jofi_pipeline_tests.warehouse.conftest import T0, T1, T2

T3 = T0 + timedelta(days=3)
DONE = "2026-02-05T10:00:00Z"


def runs(store: WarehouseStore, *steps):
    """Each step in a run of its own (a run records at most one version per key): (at, fn(run))."""
    for n, (at, step) in enumerate(steps, start=1):
        with store.open_run(f"r{n}", at) as run:
            step(run)
    return store.open_run("check", T3 + timedelta(days=1))


def chain(con, table: str, key: str = "id", value: str = "email", where: str = "true"):
    """(key, value, _valid_from, _valid_to, _is_current, _change) in order: what a test asserts exactly."""
    return con.execute(
        f"SELECT {key}, {value}, _valid_from, _valid_to, _is_current, _change FROM {table}_history "
        f"WHERE {where} ORDER BY {key}, _valid_from, _valid_to NULLS LAST"
    ).fetchall()


def test_a_change_closes_the_current_version_and_opens_one_at_the_same_instant(store: WarehouseStore):
    counts = {}

    def upsert(objects, at, name):
        return lambda run: counts.__setitem__(name, run.upsert("invitations", objects, at)["invitations_history"])

    with runs(store,
              (T0, upsert([docs.invitation(1, email="a@x.example"), docs.invitation(2)], T0, "first")),
              (T1, upsert([docs.invitation(1, email="a@x.example"), docs.invitation(2)], T1, "same")),
              (T2, upsert([docs.invitation(1, email="b@x.example")], T2, "changed"))) as run:
        assert (counts["same"].inserted, counts["same"].updated) == (0, 0), "a record seen unchanged adds nothing"
        assert (counts["changed"].inserted, counts["changed"].updated) == (1, 1)
        assert chain(run.con, "invitations", where="id = 1") == [
            (1, "a@x.example", T0, T2, False, "insert"),
            (1, "b@x.example", T2, None, True, "update"),
        ]
        assert run.query("SELECT id, _sync_run_id FROM invitations_history ORDER BY ALL") == [(1, "r1"), (1, "r3"), (2, "r1")]


def test_a_run_records_one_version_per_key_however_many_steps_it_reads_it_in(store: WarehouseStore):
    """A list item shows part of a change (a new profile id), the by-id object the rest (the
    assignments): the half-read state in between is completed in place, not kept as a version."""
    old = docs.test_taker(7, assignments=[docs.assignment(1, 8)])
    new = docs.test_taker(7, career_navigation_profile_id="CNP7", assignments=[docs.assignment(1, 8, completed_at=DONE)])
    item = docs.test_taker_list_item(7, career_navigation_profile_id="CNP7")
    with runs(store,
              (T0, lambda run: run.upsert("test_takers", [old], T0)),
              (T1, lambda run: (run.upsert("test_takers", [item], T1), run.upsert("test_takers", [new], T2)))) as run:
        assert chain(run.con, "test_takers", value="career_navigation_profile_id") == [
            (7, None, T0, T1, False, "insert"),
            (7, "CNP7", T1, None, True, "update"),
        ]
        latest = run.query("SELECT _raw FROM test_takers_history WHERE _is_current")[0][0]
        assert DONE.replace("Z", "") in latest, "the version holds what the run read last"


def test_list_items_and_by_id_objects_of_one_record_make_no_versions(store: WarehouseStore):
    """A list item carries fewer fields than the by-id object and `_raw` is their shallow merge:
    reading one shape after the other, in any order and as often as a sync does, changes nothing."""
    by_id = docs.test_taker(7, assignments=[docs.assignment(1, 6)])
    item = docs.test_taker_list_item(7)
    reads = [(at, lambda run, at=at: (run.upsert("test_takers", [item], at),
                                      run.upsert("test_takers", [by_id], at + timedelta(hours=1)))) for at in (T1, T2, T3)]
    with runs(store, (T0, lambda run: run.upsert("test_takers", [by_id], T0)), *reads) as run:
        assert run.query("SELECT count(*), min(_change), bool_and(_is_current) FROM test_takers_history") == [(1, "insert", True)]
        assert run.query("SELECT count(*) FROM test_taker_assessments_history") == [(1,)]


def test_child_rows_are_versioned_with_their_parent_and_a_dropped_child_is_closed(store: WarehouseStore):
    with runs(store,
              (T0, lambda run: run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(2, 7)])], T0)),
              (T1, lambda run: run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6, started_at=DONE, completed_at=DONE)])], T1)),
              ) as run:
        assert chain(run.con, "test_taker_assessments", "id", "completed_at") == [
            (1, None, T0, T1, False, "insert"),
            (1, datetime(2026, 2, 5, 10, tzinfo=UTC), T1, None, True, "update"),
            (2, None, T0, T1, False, "insert"),
            (2, None, T1, T1, False, "delete"),
        ]
        # the parent changed too (its raw JSON holds the assignments): one new version
        assert chain(run.con, "test_takers", value="email") == [
            (7, "linda.sample@jofiscore.com", T0, T1, False, "insert"),
            (7, "linda.sample@jofiscore.com", T1, None, True, "update"),
        ]


class _CountingConnection:
    """A connection that counts the SQL statements sent through it (and passes everything on)."""

    def __init__(self, con):
        self._con, self.statements = con, []

    def execute(self, sql, *args, **kwargs):
        self.statements.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self.statements.append(sql)
        return self._con.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_a_child_batch_with_a_change_and_a_dropped_row_takes_five_statements(store: WarehouseStore):
    """One changed child and one the parent no longer lists: the comparison reads each row's current
    version in the same join (no second join to find it again), and the delete markers are written
    by the statement that finds the rows no longer listed. Five statements: compare, mark the gone,
    close the changed, open the changed, close the gone. The chains are exact."""
    from jofi_pipeline.warehouse import history

    hist = HISTORY["test_taker_assessments"]
    spec = TABLES["test_taker_assessments"]
    with runs(store, (T0, lambda run: run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(2, 7)])], T0))):
        pass
    with store.open_run("r2", T1) as run:
        run.con.begin()
        rows = run.con.sql("SELECT * FROM test_taker_assessments WHERE id = 1").to_arrow_table()
        rows = rows.set_column(rows.schema.get_field_index("completed_at"), "completed_at",
                               pa.array([datetime(2026, 2, 5, 10, tzinfo=UTC)], type=rows.schema.field("completed_at").type))
        parents = pa.table({n: pa.array([7], type=rows.schema.field(n).type) for n in spec.parent_columns})
        counted = _CountingConnection(run.con)
        counts = history.record_children(counted, hist, rows.select([c.name for c in spec.all_columns]), parents, T1, "r2")
        run.con.commit()
        assert (counts.inserted, counts.updated, counts.removed) == (1, 1, 1)
        assert len(counted.statements) == 5, counted.statements
        assert chain(run.con, "test_taker_assessments", "id", "completed_at") == [
            (1, None, T0, T1, False, "insert"),
            (1, datetime(2026, 2, 5, 10, tzinfo=UTC), T1, None, True, "update"),
            (2, None, T0, T1, False, "insert"),
            (2, None, T1, T1, False, "delete"),
        ]


def _both_ways(tmp_path, monkeypatch, steps):
    """Run `steps` (as `runs` does) in two stores, the store's own way and with its short way for
    child versions switched off (record_children alone); what the short way returned, per way."""
    from jofi_pipeline.warehouse import history

    real, opened = history.open_first_child_versions, {}

    def spy(*args, **kwargs):
        opened.setdefault(way, []).append(real(*args, **kwargs))
        return opened[way][-1]

    ends = {}
    for way in ("short", "long"):
        monkeypatch.setattr(history, "open_first_child_versions", spy if way == "short" else lambda *a, **k: 0)
        ends[way] = steps(WarehouseStore(tmp_path / way, "live"))
    return ends, opened["short"]


def test_first_child_versions_take_one_insert_and_history_that_disagrees_is_compared_all_the_same(tmp_path, monkeypatch):
    """New scorecards' scores are all inserted: their first versions are opened in one statement
    (history.open_first_child_versions), with the hash the long way computes. When rows of a
    scorecard went missing from the table while their versions stayed current (a top-level score,
    whose parent_score_id is null, and a facet), that statement opens nothing and the batch is
    compared as before: the chain ends exactly as the long way (record_children alone) leaves it."""
    from jofi_pipeline.warehouse import history

    changed = docs.scorecard(7)
    changed["scores"]["thinking_skills"][0]["facets"][0]["test_taker_score"] = 9.5  # score 2 differs from its version

    def lost_rows(run):  # history keeps test taker 7's scores 1 and 2 current; its rows are gone from the table
        run.con.execute("DELETE FROM scorecard_scores WHERE test_taker_id = 7")
        run.con.execute("DELETE FROM scorecard_scores_history WHERE test_taker_id = 7 AND score_id NOT IN (1, 2)")

    def steps(store):
        with runs(store, (T0, lambda run: run.upsert("scorecards", [docs.scorecard(7), docs.scorecard(8)], T0))) as run:
            first = run.query("SELECT _valid_from, _valid_to, _is_current, _change, _sync_run_id, _row_hash FROM scorecard_scores_history ORDER BY ALL")
            hashes = run.query(f"SELECT {history.child_hash_sql(HISTORY['scorecard_scores'], 't')} FROM scorecard_scores AS t ORDER BY ALL")
        with runs(store, (T1, lost_rows), (T2, lambda run: run.upsert("scorecards", [changed], T2))) as run:
            return first, hashes, chain(run.con, "scorecard_scores", "score_id", "test_taker_score", "test_taker_id = 7")

    ends, opened = _both_ways(tmp_path, monkeypatch, steps)
    assert ends["short"] == ends["long"]
    assert opened == [8, 0], "the first batch took one statement; the one history disagrees with, none"
    first, hashes, end = ends["short"]
    assert len(first) == 8 and {r[:5] for r in first} == {(T0, None, True, "insert", "r1")}
    assert sorted(r[5:] for r in first) == hashes
    assert [r for r in end if r[0] == 2] == [(2, 7.0, T0, T2, False, "insert"), (2, 9.5, T2, None, True, "update")]
    assert [r for r in end if r[0] == 1] == [(1, 6.5, T0, None, True, "insert")], "unchanged: still its first version"
    assert len(end) == 5, "scores 3 and 10 opened again, score 2 closed and opened, score 1 kept"


def test_children_no_longer_listed_are_closed_even_when_every_listed_one_is_new(tmp_path, monkeypatch):
    """A test taker's assessments 1 and 2 went missing from the table while their versions stayed
    current; the next read lists only assessment 3, new to the table. The short way must not open
    3 and leave 1 and 2 current: it opens nothing, and the long way closes them."""
    def lost_rows(run):
        run.con.execute("DELETE FROM test_taker_assessments")

    def steps(store):
        with runs(store,
                  (T0, lambda run: run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6), docs.assignment(2, 7)])], T0)),
                  (T1, lost_rows),
                  (T2, lambda run: run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(3, 8)])], T2))) as run:
            return chain(run.con, "test_taker_assessments", "id", "assessment_id")

    ends, opened = _both_ways(tmp_path, monkeypatch, steps)
    assert ends["short"] == ends["long"]
    assert opened == [2, 0]
    assert [r[4:] for r in ends["short"]] == [(False, "insert"), (False, "delete"), (False, "insert"), (False, "delete"), (True, "insert")]


def test_a_deleted_record_is_closed_with_a_delete_marker_and_may_come_back(store: WarehouseStore):
    with runs(store,
              (T0, lambda run: run.upsert("invitations", [docs.invitation(1)], T0)),
              (T1, lambda run: run.mark_deleted("invitations", [1], T1)),
              (T2, lambda run: run.mark_deleted("invitations", [1], T2)),  # already gone: nothing more
              (T3, lambda run: run.upsert("invitations", [docs.invitation(1)], T3))) as run:
        assert chain(run.con, "invitations", value="first_name") == [
            (1, "Linda", T0, T1, False, "insert"),
            (1, "Linda", T1, T1, False, "delete"),
            (1, "Linda", T3, None, True, "insert"),
        ]


def test_scores_with_a_null_key_part_are_versioned_once(store: WarehouseStore):
    """Facet rows are keyed with parent_score_id; top-level scores have it null (IS NOT DISTINCT FROM)."""
    with runs(store,
              (T0, lambda run: run.upsert("scorecards", [docs.scorecard(7)], T0)),
              (T1, lambda run: run.upsert("scorecards", [docs.scorecard(7)], T1))) as run:
        rows = run.query("SELECT count(*) FROM scorecard_scores")[0][0]
        assert run.query("SELECT count(*), count(*) FILTER (WHERE _is_current) FROM scorecard_scores_history") == [(rows, rows)]
        assert run.query("SELECT count(*) FROM scorecard_scores_history WHERE parent_score_id IS NULL")[0][0] > 0


def test_a_warehouse_built_before_history_starts_it_from_its_current_rows_once(store: WarehouseStore, caplog):
    with store.open_run("r1", T0) as run:
        run.upsert("invitations", [docs.invitation(1), docs.invitation(2)], T0)
        run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6)])], T0)
        run.mark_deleted("invitations", [2], T1)
        for hist in HISTORY.values():  # as if built before history existed
            run.con.execute(f"DROP TABLE {hist.name}")
    with caplog.at_level("WARNING"), store.open_run("r2", T2) as run:
        assert run.history_started == {"invitations_history": 2, "test_takers_history": 1, "test_taker_assessments_history": 1}
        assert chain(run.con, "invitations", value="first_name") == [
            (1, "Linda", T0, None, True, "insert"),
            (2, "Linda", T0, T1, False, "insert"),
            (2, "Linda", T1, T1, False, "delete"),
        ]
        assert run.query("SELECT count(*) FROM invitations_history WHERE _sync_run_id IS NOT NULL") == [(0,)]
        # the started versions carry the same hash new versions get: a re-read adds nothing
        counts = run.upsert("test_takers", [docs.test_taker(7, assignments=[docs.assignment(1, 6)])], T2)
        assert counts["test_takers_history"].inserted == 0 and "test_taker_assessments_history" not in counts
        assert run.query("SELECT count(*) FROM test_takers_history") == [(1,)]
    assert sum("history starts now" in r.message for r in caplog.records) == 1
    with store.open_run("r3", T3) as run:
        assert run.history_started == {}


def test_every_history_column_is_commented_and_keys_add_valid_from():
    for table, hist in HISTORY.items():
        assert hist.key == TABLES[table].key + ("_valid_from",)
        assert all(c.comment for c in hist.all_columns)
        assert {"_valid_from", "_valid_to", "_is_current", "_change", "_row_hash", "_sync_run_id", "_mode"} <= set(hist.column_names)
        assert "_last_synced_at" not in hist.column_names


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    """Built once per module (per worker): its tests only read it, through a read-only connection."""
    store = WarehouseStore(tmp_path_factory.mktemp("history") / "data", "live")
    def day1(run):
        run.upsert("invitations", [docs.invitation(1, created_at="2026-02-03T09:00:00Z", accepted_at="2026-02-03T21:00:00Z", test_taker_id=7)], T1)
        run.upsert("test_takers", [docs.test_taker(7, invitation_id=1, assignments=[
            docs.assignment(1, 6, completed_at="2026-02-04T09:00:00Z"), docs.assignment(2, 7)])], T1)

    with runs(store,
              (T0, lambda run: run.upsert("invitations", [docs.invitation(1, created_at="2026-02-03T09:00:00Z")], T0)),
              (T1, day1),
              (T2, lambda run: run.upsert("test_takers", [docs.test_taker(7, invitation_id=1, assignments=[
                  docs.assignment(1, 6, completed_at="2026-02-04T09:00:00Z"),
                  docs.assignment(2, 7, completed_at="2026-02-05T09:00:00Z")])], T2)),
              (T3, lambda run: run.mark_deleted("test_takers", [7], T3))) as run:
        run.publish()
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    con.execute("SET TimeZone = 'America/Sao_Paulo'")
    yield con
    con.close()


def test_as_of_macros_return_the_version_current_at_a_moment(published):
    def at(table, moment, cols="id, accepted_at"):
        return published.execute(f"SELECT {cols} FROM {table}_as_of(?::TIMESTAMPTZ) ORDER BY ALL", [moment]).fetchall()

    accepted = datetime(2026, 2, 3, 21, tzinfo=UTC)
    assert at("invitations", T0 - timedelta(seconds=1)) == []
    assert at("invitations", T0) == [(1, None)]
    assert at("invitations", T1 - timedelta(microseconds=1)) == [(1, None)]
    assert at("invitations", T1) == [(1, accepted)]
    assert at("test_takers", T2, "id") == [(7,)]
    assert at("test_takers", T3, "id") == [], "gone from the moment it was found deleted"
    assert at("test_taker_assessments", T2, "id, completed_at IS NOT NULL") == [(1, True), (2, True)]
    assert at("test_taker_assessments", T1, "id, completed_at IS NOT NULL") == [(1, True), (2, False)]
    assert at("test_taker_assessments", T3, "id") == [], "children go with their parent"
    # the README's spelling: a TIMESTAMPTZ literal
    assert published.execute("SELECT count(*) FROM invitations_as_of(TIMESTAMPTZ '2026-03-02 02:00:00+00')").fetchone() == (1,)


def test_funnel_timings_come_from_history(published):
    # the test taker is deleted now, so the invitation shows as not linked; look at it before the delete
    row = published.execute(
        "SELECT invitation_id, test_taker_id, accepted_at, first_completion_at, all_completed_at, "
        "hours_invited_to_accepted, hours_accepted_to_first_completion, hours_first_to_all_completions, "
        "hours_invited_to_all_completions FROM funnel_timings").fetchall()
    assert row == [(1, None, datetime(2026, 2, 3, 21, tzinfo=UTC), None, None, 12.0, None, None, None)]


def test_funnel_timings_of_a_complete_funnel(store: WarehouseStore):
    def day0(run):
        run.upsert("invitations", [docs.invitation(1, created_at="2026-02-03T09:00:00Z", accepted_at="2026-02-03T21:00:00Z", test_taker_id=7)], T0)
        run.upsert("test_takers", [docs.test_taker(7, invitation_id=1, assignments=[
            docs.assignment(1, 6, completed_at="2026-02-04T09:00:00Z"), docs.assignment(2, 7)])], T0)

    # a retake: the first completion is cleared by the API, then completed again later
    with runs(store,
              (T0, day0),
              (T1, lambda run: run.upsert("test_takers", [docs.test_taker(7, invitation_id=1, assignments=[
                  docs.assignment(1, 6), docs.assignment(2, 7, completed_at="2026-02-05T09:00:00Z")])], T1)),
              (T2, lambda run: run.upsert("test_takers", [docs.test_taker(7, invitation_id=1, assignments=[
                  docs.assignment(1, 6, completed_at="2026-02-06T09:00:00Z"),
                  docs.assignment(2, 7, completed_at="2026-02-05T09:00:00Z")])], T2))) as run:
        run.publish()
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute(
            "SELECT test_taker_id, first_completion_at, all_completed_at, assessments_assigned, assessments_completed, "
            "hours_invited_to_accepted, hours_accepted_to_first_completion, hours_first_to_all_completions, "
            "hours_invited_to_all_completions FROM funnel_timings").fetchall() == [
            (7, datetime(2026, 2, 4, 9, tzinfo=UTC), datetime(2026, 2, 5, 9, tzinfo=UTC), 2, 2, 12.0, 12.0, 24.0, 48.0)
        ]
        comments = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE comment IS NULL AND "
            "(table_name LIKE '%_history' OR table_name = 'funnel_timings')").fetchall()
        assert comments == []
        macros = dict(con.execute(
            "SELECT function_name, comment FROM duckdb_functions() WHERE function_type = 'table_macro' AND database_name = current_database()").fetchall())
        assert set(macros) == {f"{t}_as_of" for t in HISTORY} and all(macros.values())


def test_the_chain_check_passes_clean_history_and_names_each_kind_of_break(published):
    from jofi_pipeline.warehouse.published import PublishedReader

    reader = PublishedReader(published)
    assert {t: reader.history_breaks(f"{t}_history") for t in HISTORY} == dict.fromkeys(HISTORY, 0)
    assert reader.every_history_breaks() == {f"{t}_history": 0 for t in HISTORY}  # the one statement the checks ask

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("ATTACH ? AS pub (READ_ONLY)", [published.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]])
    breaks = {
        "gap": "UPDATE invitations_history SET _valid_to = _valid_to - INTERVAL 1 SECOND WHERE NOT _is_current",
        "two current": "UPDATE invitations_history SET _valid_to = NULL, _is_current = true",
        "flag disagrees": "UPDATE invitations_history SET _is_current = false WHERE _valid_to IS NULL",
        "same content twice": "UPDATE invitations_history SET _row_hash = 'x'",
        "open delete marker": "UPDATE test_takers_history SET _valid_to = NULL, _is_current = true WHERE _change = 'delete'",
    }
    for name, sql in breaks.items():
        for t in HISTORY:
            con.execute(f"DROP TABLE IF EXISTS {t}_history")
            con.execute(f"CREATE TABLE {t}_history AS FROM pub.{t}_history")
        con.execute(sql)
        broken = PublishedReader(con)
        assert broken.history_breaks("invitations_history") + broken.history_breaks("test_takers_history") == 1, name
        assert broken.every_history_breaks() == {f"{t}_history": broken.history_breaks(f"{t}_history") for t in HISTORY}, name


def test_the_readme_history_queries_run_on_a_published_file(published):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- tested: jofi_pipeline_tests/warehouse/test_history.py -->\n```sql\n(.*?)```", readme, re.S)
    assert block, "the README's history example is gone"
    statements = [s.strip() for s in block.group(1).split(";") if s.strip()]
    results = [published.execute(s).fetchall() for s in statements]
    assert results[0] == [(1, 1)]
    assert results[1] == [(12.0, None)]
    assert results[2] == []  # no scorecards in this file


@pytest.mark.parametrize("labels", [
    {1: "update", 2: "update", 3: "insert", 4: "insert"},  # what the merge knows: as the store passes them
    {1: "insert", 2: "insert", 3: "insert", 4: "insert"},  # wrong about the changed key
    {1: "update", 2: "update", 3: "update", 4: "update"},  # wrong about the deleted and the new key
])
def test_the_short_way_for_keys_the_run_has_not_versioned_writes_what_the_long_way_writes(store: WarehouseStore, labels):
    """history.record_changed_versions (no read-back; the merge says which keys hold a current
    version) against record_versions on the same batch: a changed key, an unchanged one, one back
    after a delete and a new one; labels the caller got wrong are put right."""
    from jofi_pipeline.warehouse import history

    with runs(store,
              (T0, lambda run: run.upsert("invitations", [docs.invitation(i) for i in (1, 2, 3)], T0)),
              (T1, lambda run: run.mark_deleted("invitations", [3], T1))) as run:
        con, hist = run.con, HISTORY["invitations"]
        batch = con.sql(
            """SELECT t.*, CASE t.id WHEN 1 THEN 'changed' WHEN 3 THEN 'back' ELSE h._row_hash END AS _row_hash
            FROM invitations AS t LEFT JOIN invitations_history AS h ON h.id = t.id AND h._is_current
            UNION ALL BY NAME SELECT t.* REPLACE (4 AS id), 'new' AS _row_hash FROM invitations AS t WHERE t.id = 1
            ORDER BY id"""
        ).to_arrow_table()
        written = {}
        for way in ("long", "short"):
            con.begin()
            if way == "long":
                counts = history.record_versions(con, hist, batch, T2, "r3")
            else:
                change = [labels[i] for i in batch["id"].to_pylist()]
                counts = history.record_changed_versions(con, hist, batch.append_column("_change", pa.array(change)), T2, "r3")
            written[way] = (counts.inserted, counts.updated, chain(con, "invitations", value="_row_hash"))
            con.rollback()
        assert written["short"] == written["long"]
        assert written["long"][:2] == (3, 1)  # opened 1, 3, 4; closed 1's version


def logged_statements(con) -> list[str]:
    """The statements DuckDB's query log holds for this database (logging enabled by `logging_queries`)."""
    return [" ".join(m.split()) for (m,) in con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()]


@pytest.fixture
def logging_queries(monkeypatch):
    """Every work database a run opens logs its statements from the start."""
    real = WarehouseStore._connect_work_db

    def connect(self):
        con = real(self)
        con.execute("CALL enable_logging('QueryLog')")
        return con

    monkeypatch.setattr(WarehouseStore, "_connect_work_db", connect)


def test_opening_a_run_asks_every_history_table_whether_history_must_start_in_one_statement(store: WarehouseStore, logging_queries):
    with store.open_run("r1", T0) as run:
        run.upsert("invitations", [docs.invitation(1)], T0)
    with store.open_run("r2", T1) as run:
        reading_history = [s for s in logged_statements(run.con) if '_history"' in s and not s.startswith(("CREATE", "ALTER"))]
        assert len(reading_history) == 1, reading_history  # not a count(*) per history table
        assert all(f'FROM "{hist.name}"' in reading_history[0] for hist in HISTORY.values())
        assert run.history_started == {}


def test_a_run_asks_once_which_history_tables_its_run_id_already_holds_current_versions_in(store: WarehouseStore, logging_queries):
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team(id=1)], T0)
        run.upsert("users", [docs.user(id=501)], T0)
        run.upsert("invitations", [docs.invitation(1)], T0)
        asked = [s for s in logged_statements(run.con) if "_sync_run_id = $run AND _is_current" in s]
        assert len(asked) == 1, asked  # one statement for every history table, not one per table written
    # a run id used again (its versions are there before its writer): completed in place, as before
    with store.open_run("r1", T1) as run:
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        assert chain(run.con, "teams", value="display_name") == [(1, "Renamed", T0, None, True, "insert")]
