"""Incremental publish: only changed tables are rewritten, and the result equals a full build."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
import json
from pathlib import Path

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse import publish_history as publish_history_module
from jofi_pipeline.warehouse.tables import TABLES, Column
from jofi_pipeline.warehouse.views import VIEWS, ViewSpec
from jofi_pipeline_tests.warehouse.conftest import T0, T1, T2, spy
from jofi_pipeline_tests.warehouse.test_publish import fill, filled


def contents(path) -> dict[str, list]:
    """Every table's rows (sorted) and every view's definition in a published file."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {name: sorted(map(repr, con.execute(f'SELECT * FROM "{name}"').fetchall())) for name in TABLES}
        views = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
        comments = con.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal ORDER BY 1, 2"
        ).fetchall()
    return {"tables": tables, "views": views, "comments": comments}


def parquet_inode(store: WarehouseStore, table: str) -> int:
    return (store.parquet_dir / table / "part-0.parquet").stat().st_ino


def test_a_publish_with_nothing_changed_rewrites_no_table_and_links_every_parquet_file(store):
    with store.open_run("r1", T0) as run:
        fill(run)
        first = run.publish()
        inodes = {t: parquet_inode(store, t) for t in TABLES}
        second = run.publish()
    assert set(first.changed_tables) == set(TABLES)
    assert second.changed_tables == ()
    assert {t: parquet_inode(store, t) for t in TABLES} == inodes  # the same files, hard-linked
    assert second.row_counts == first.row_counts
    assert first.parquet_version_dir != second.parquet_version_dir


def test_only_changed_tables_are_rewritten_and_the_file_equals_a_full_build(store, tmp_path):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        inodes = {t: parquet_inode(store, t) for t in TABLES}
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        result = run.publish()
        incremental = contents(store.published_db_path)
        # The same work database published from scratch (no previous version to start from).
        full_store = WarehouseStore(tmp_path / "full", "live")
        full_store.mode_dir.mkdir(parents=True)
        publish_module.publish(run.con, full_store.paths)
    assert result.changed_tables == ("teams", "teams_history")  # the rename is also a version
    assert incremental == contents(full_store.published_db_path)
    assert parquet_inode(store, "teams") != inodes["teams"]
    assert all(parquet_inode(store, t) == inodes[t] for t in TABLES if t not in result.changed_tables)
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT display_name FROM teams WHERE id = 1").fetchone() == ("Renamed",)
        for view in VIEWS:  # kept from the previous file, still bound to the rebuilt table
            con.execute(f'SELECT count(*) FROM "{view.name}"').fetchone()
        assert con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'jofi'"
                           ).fetchone()[0].startswith("v1.4.0")
    table = duckdb.sql(f"SELECT display_name FROM '{store.parquet_dir}/teams/part-0.parquet' WHERE id = 1").fetchall()
    assert table == [("Renamed",)]


def test_a_schema_change_rebuilds_that_table(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        spec = TABLES["teams"]
        monkeypatch.setitem(TABLES, "teams", dataclasses.replace(spec, comment=spec.comment + " Renamed comment."))
        result = run.publish()
    assert result.changed_tables == ("teams",)
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'teams'").fetchone()[0]
    assert "Renamed comment." in comment


def test_a_changed_view_is_rebuilt_and_a_stale_one_dropped(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        kept = VIEWS[0]
        monkeypatch.setattr(publish_module, "VIEWS", [dataclasses.replace(kept, comment="A new comment.")])
        result = run.publish()
    assert result.changed_tables == ()
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        views = con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == [(kept.name, "A new comment.")]


@pytest.mark.parametrize("damage", ["no fingerprints", "other format", "not json", "missing db", "garbage db", "truncated db"])
def test_without_usable_fingerprints_the_whole_database_is_built(tmp_path, damage):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        current = store.mode_dir / "current"
        manifest = current / publish_module.FINGERPRINTS_NAME
        if damage == "no fingerprints":
            manifest.unlink()
        elif damage == "other format":
            manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 0}))
        elif damage == "not json":
            manifest.write_text("{")
        elif damage == "missing db":
            (current / "jofi.duckdb").unlink()
        elif damage == "garbage db":  # found by the ATTACH of its copy, not by opening it first
            (current / "jofi.duckdb").write_bytes(b"\x00garbage" * 512)
        else:
            db = current / "jofi.duckdb"
            db.write_bytes(db.read_bytes()[:4096])
        result = run.publish()
    assert set(result.changed_tables) == set(TABLES)
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (1,)


def test_a_table_that_left_the_registry_is_dropped_from_the_copy(tmp_path):
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        # Not monkeypatch.delitem: it puts the table back at the end of the registry, and the
        # registry's order is the order Dagster must see the assets in (a table before its history).
        registry = dict(TABLES)
        del TABLES["email_templates"]
        try:
            result = run.publish()
        finally:
            TABLES.clear()
            TABLES.update(registry)
    assert "email_templates" not in result.row_counts
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "email_templates" not in names and "teams" in names
    assert not (store.parquet_dir / "email_templates").exists()


def full_build(run, path) -> dict[str, list]:
    """The run's work database published from scratch (no previous version to start from)."""
    full_store = WarehouseStore(path, "live")
    full_store.mode_dir.mkdir(parents=True)
    publish_module.publish(run.con, full_store.paths)
    return contents(full_store.published_db_path)


@pytest.fixture
def patches(monkeypatch) -> dict[str, list[bool]]:
    """History table -> whether each patch tried was proven exact (True) or undone to copy it whole (False)."""
    seen: dict[str, list[bool]] = {}
    real = publish_history_module.apply_patch

    def recording(con, spec, *args):
        patched = real(con, spec, *args)
        if patched is not None:
            seen.setdefault(spec.name, []).append(patched)
        return patched

    monkeypatch.setattr(publish_module, "apply_patch", recording)
    monkeypatch.setattr(publish_history_module, "apply_patch", recording)
    return seen


class CountingCommits:
    """A connection that counts its commits (the patches' transactions end in one)."""

    def __init__(self, con) -> None:
        self._con = con
        self.commits = 0

    def commit(self):
        self.commits += 1
        return self._con.commit()

    def cursor(self):  # the publish patches history on a cursor of its own (its history lane)
        return CountingCommits(self._con.cursor())

    def __enter__(self):
        self._con.__enter__()
        return self

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("teams", [10, 1], ids=["ten-teams", "one-team"])
def test_the_nights_history_patches_commit_once_together(tmp_path, patches, monkeypatch, teams):
    """One commit (one write and sync of the new file's WAL) for every history table patched, not one each.

    With one team, the night writes most of teams_history (one version closed, one opened, on a
    table of one row): it is patched like any night, in the night's one transaction, not undone
    to copy it whole."""
    store = filled(tmp_path / "data", teams, users=True, published=True)
    commits_while_patching = []
    real = publish_module.patch_histories

    def counting(con, *args):
        if not isinstance(con, CountingCommits):  # the full build compared with
            return real(con, *args)
        before = con.commits
        patched = real(con, *args)
        commits_while_patching.append(con.commits - before)
        return patched

    monkeypatch.setattr(publish_module, "patch_histories", counting)
    with store.open_run("r2", T1) as run:
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=501, first_name="Anne")], T1)
        result = publish_module.publish(CountingCommits(run.con), store.paths)
        assert {"teams_history", "users_history"} <= set(result.changed_tables)
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")
    assert patches["teams_history"] == [True] and patches["users_history"] == [True]
    assert commits_while_patching == [1]


def test_one_patch_refused_in_a_night_leaves_the_others_patched(tmp_path, patches):
    """The shared transaction undone for one unproven patch: the proven ones are applied again, each alone."""
    store = published_then_renamed_at_t2(tmp_path / "data", users=True)
    # The clock stepped back below teams_history's latest instant (its patch is refused), not
    # below users_history's (its patch is proven).
    with store.open_run("r3", T1) as run:
        run.upsert("teams", [docs.team(id=2, display_name="Renamed")], T1)
        run.upsert("users", [docs.user(id=501, first_name="Anne")], T1)
        result = run.publish()
        assert {"teams_history", "users_history"} <= set(result.changed_tables)
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")
        history = run.con.execute("SELECT * FROM users_history ORDER BY ALL").fetchall()
    parquet = duckdb.sql(f"SELECT * FROM read_parquet('{store.parquet_dir}/users_history/*.parquet') ORDER BY ALL")
    assert parquet.fetchall() == history
    assert patches["teams_history"] == [True, False]
    assert patches["users_history"] == [True, True]  # proven with teams_history's patch, undone, applied alone


def test_history_tables_are_patched_with_the_nights_keys_and_equal_a_full_build(tmp_path, patches):
    store = filled(tmp_path / "data", 10, published=True)  # a patch is for a night that touched a few keys, not most of them
    nights = [
        (T1, lambda run: run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)),
        (T2, lambda run: run.mark_deleted("teams", [2], T2)),
        (T2 + timedelta(hours=1), lambda run: run.upsert(
            "teams", [docs.team(id=1, display_name="Again"), docs.team(id=2), docs.team(id=3, display_name="New")],
            T2 + timedelta(hours=1))),
    ]
    for night, (at, change) in enumerate(nights, start=2):
        with store.open_run(f"r{night}", at) as run:
            change(run)
            result = run.publish()
            assert "teams_history" in result.changed_tables
            assert contents(store.published_db_path) == full_build(run, tmp_path / f"full{night}")
            history = run.con.execute("SELECT * FROM teams_history ORDER BY ALL").fetchall()
        parquet = duckdb.sql(f"SELECT * FROM read_parquet('{store.parquet_dir}/teams_history/*.parquet') ORDER BY ALL")
        assert parquet.fetchall() == history
    assert patches["teams_history"] == [True, True, True]  # every night, only the night's keys


def test_a_patch_starts_where_the_previous_fingerprint_says_without_reading_the_copy(tmp_path, patches):
    """The previous version's fingerprint of a history table records its latest instant: the patch
    starts there, with no scan of the copy for it. A manifest written before fingerprints recorded
    it (three parts) still gets its patch, the instant read from the copy."""
    store = filled(tmp_path / "data", 10, published=True)
    manifest = store.paths.current / publish_module.FINGERPRINTS_NAME
    recorded = json.loads(manifest.read_text())
    assert recorded["tables"]["teams_history"]["fingerprint"].count(":") == 3
    for night, older_manifest in ((2, False), (3, True)):
        if older_manifest:
            recorded = json.loads(manifest.read_text())
            for table in recorded["tables"].values():
                table["fingerprint"] = ":".join(table["fingerprint"].split(":")[:3])
            manifest.write_text(json.dumps(recorded))
        at = T0 + timedelta(days=night)
        with store.open_run(f"r{night}", at) as run:
            run.upsert("teams", [docs.team(id=1, display_name=f"Name {night}")], at)
            run.con.execute("CALL enable_logging('QueryLog')")
            run.publish()
            read_copy = [m for (m,) in run.con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()
                         if "max(greatest" in m and publish_module.PUBLISH_CATALOG in m]
            assert len(read_copy) == (1 if older_manifest else 0), read_copy
            assert contents(store.published_db_path) == full_build(run, tmp_path / f"full{night}")
    assert patches["teams_history"] == [True, True]


def published_then_renamed_at_t2(folder, *, users: bool = False) -> WarehouseStore:
    """Night 1 at T0 (10 teams, and 10 users if asked), night 2 at T2 renames team 1: the start of
    a clock stepped back to T1 on night 3."""
    store = filled(folder, 10, users=users, published=True)
    with store.open_run("r2", T2) as run:
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T2)
        run.publish()
    return store


def test_a_patch_that_would_not_give_the_work_table_is_refused_and_the_table_copied_whole(tmp_path, patches):
    store = published_then_renamed_at_t2(tmp_path / "data")
    # The clock stepped back: the new version opens before the copy's latest instant, so the
    # key it touched is not found by time; the fingerprints show it and the table is copied.
    with store.open_run("r3", T1) as run:
        run.upsert("teams", [docs.team(id=2, display_name="Renamed")], T1)
        result = run.publish()
        assert "teams_history" in result.changed_tables
        assert contents(store.published_db_path) == full_build(run, tmp_path / "full")
    assert patches["teams_history"] == [True, False]


def test_a_history_table_patched_night_after_night_is_never_copied_whole(tmp_path, patches):
    """A patch only appends the night's versions and ends the ones it closed in place: nothing is
    deleted from the copy, so nothing has to be shed by copying the table whole now and then."""
    store = filled(tmp_path / "data", 10, published=True)
    for night in range(1, 10):
        at = T0 + timedelta(days=night)
        with store.open_run(f"r{night + 1}", at) as run:
            run.upsert("teams", [docs.team(id=1 + night % 2, display_name=f"Name {night}")], at)
            run.publish()
            assert contents(store.published_db_path) == full_build(run, tmp_path / f"full{night}")
    assert patches["teams_history"] == [True] * 9


def test_a_reader_holding_the_published_file_for_writing_still_gets_an_incremental_publish(tmp_path):
    """An analyst's `duckdb jofi.duckdb` opens it read-write and holds its lock: the next version is
    still a copy of it with only the changed tables rebuilt, and the analyst keeps reading the old one."""
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        held = duckdb.connect(str(store.published_db_path))  # read-write, as the DuckDB CLI opens a file
        try:
            run.upsert("teams", [docs.team(id=2)], T1)
            result = run.publish()
            assert held.execute("SELECT count(*) FROM teams").fetchone() == (1,)  # the version it opened
        finally:
            held.close()
    assert set(result.changed_tables) == {"teams", "teams_history"}
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teams").fetchone() == (2,)


def test_a_publish_flushes_what_it_wrote_and_every_folder_but_not_the_files_it_carried_over(store, monkeypatch):
    """A carried-over Parquet file is a hard link to bytes the publish that wrote them flushed;
    its new directory entry is made durable by flushing its folder."""
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        flushed: list = []
        spy(monkeypatch, publish_module, "fsync_path", flushed.append)
        run.upsert("teams", [docs.team(id=1, display_name="Renamed")], T1)
        result = run.publish()
    version = result.version_dir
    files = {p.relative_to(version) for p in flushed if p.is_file() and version in p.parents}
    folders = {p for p in flushed if p.is_dir()}
    parquet = version / "parquet"
    assert files == {Path("jofi.duckdb"), Path("fingerprints.json")} | {
        Path("parquet", name, "part-0.parquet") for name in result.changed_tables}
    assert {parquet / name for name in TABLES} | {version, parquet} <= folders


def test_a_published_file_replaced_by_hand_is_not_built_on(tmp_path, patches, caplog):
    """The current version's jofi.duckdb swapped for an older one (its manifest untouched): the
    next publish must not keep tables from it or patch its history from the manifest's latest
    instant (that publish lacked the versions written in between, and the proof passed): it builds
    the new version whole, says so, and the night after builds on that version again."""
    store = filled(tmp_path / "data", 10, published=True)
    older = tmp_path / "older.duckdb"
    older.write_bytes((store.paths.current / "jofi.duckdb").read_bytes())
    with store.open_run("r2", T1) as run:
        run.upsert("teams", [docs.team(id=1, display_name="Night 2")], T1)
        run.publish()
    (store.paths.current / "jofi.duckdb").write_bytes(older.read_bytes())  # replaced by hand
    nights = [(T2, 2), (T2 + timedelta(days=1), 3)]
    for night, (at, team) in enumerate(nights, start=3):
        with caplog.at_level("WARNING"), store.open_run(f"r{night}", at) as run:
            run.upsert("teams", [docs.team(id=team, display_name=f"Night {night}")], at)
            run.publish()
            assert contents(store.published_db_path) == full_build(run, tmp_path / f"full{night}")
    said = [r.getMessage() for r in caplog.records if "not be the one its publish wrote" in r.getMessage()]
    assert len(said) == 1 and "size or modification time changed" in said[0]
    # Night 2 patched the first version; night 3 built whole (no patch tried); night 4 patched night 3's.
    assert patches.get("teams_history") == [True, True]


def test_a_view_of_a_history_column_added_since_is_created_after_its_table_is_rebuilt(tmp_path, monkeypatch):
    """A history table whose schema changed is not patched but copied whole, after the other
    tables' copies (publish's lanes); the views, rebuilt because a schema changed, must be
    created once it is: a view reading the new column was once bound to the old table and
    refused the whole publish."""
    store = filled(tmp_path / "data", 2, published=True)
    spec = TABLES["teams_history"]
    with store.open_run("r2", T1) as run:
        run.con.execute("ALTER TABLE teams_history ADD COLUMN note VARCHAR")
        monkeypatch.setitem(TABLES, "teams_history", dataclasses.replace(
            spec, system_columns=spec.system_columns + (Column("note", "VARCHAR", "A note kept by this test."),)))
        monkeypatch.setattr(publish_module, "VIEWS", [*VIEWS, ViewSpec("team_notes", "This test's view.", "SELECT id, note FROM teams_history")])
        run.upsert("teams", [docs.team(id=2, display_name="Renamed")], T1)
        result = run.publish()
        assert "teams_history" in result.changed_tables
        wanted = run.con.execute("SELECT id, note FROM teams_history ORDER BY ALL").fetchall()
    with duckdb.connect(str(store.published_db_path), read_only=True) as con:
        assert con.execute("SELECT * FROM team_notes ORDER BY ALL").fetchall() == wanted
        assert len(wanted) == 3  # two teams' first versions and the renamed one's second
