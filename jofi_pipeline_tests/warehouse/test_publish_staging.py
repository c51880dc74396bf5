"""The new version's folder and the copy of the current file it starts from (publish_staging.py):
the copy is under way while the gate judges, and a publish that is refused or fails leaves the
published pair as it was and no folder of its own behind (a copy that fails: test_publish.py)."""

from __future__ import annotations

import threading

import duckdb
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse import integrity
from jofi_pipeline.warehouse import publish_staging
from jofi_pipeline.warehouse import store as store_module
from jofi_pipeline.warehouse.errors import PublishRefusedError
from jofi_pipeline_tests.warehouse.conftest import T0, T1, interrupted_once, spy
from jofi_pipeline_tests.warehouse.test_publish import fill, filled, published_state


def version_folders(store) -> list[str]:
    return sorted(p.name for p in store.mode_dir.glob("published.*"))


def test_the_copy_of_the_current_file_starts_before_the_gate_and_is_flushed_by_the_switch(store, monkeypatch):
    events: list[str] = []
    copies: list[str] = []
    real_copy = publish_staging.copy_and_flush

    def copy(source, target):  # runs in the staging thread
        real_copy(source, target)
        copies.append(target.parent.name)

    monkeypatch.setattr(publish_staging, "copy_and_flush", copy)
    spy(monkeypatch, store_module, "staged_for", lambda targets, previous, early: events.append("copy started" if previous else "nothing to copy"))
    spy(monkeypatch, store_module, "table_fingerprints", lambda con: events.append("fingerprints"))
    spy(monkeypatch, integrity, "findings", lambda *args: events.append("gate"))
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()  # nothing to copy from yet: the first version is built whole
        assert events == ["nothing to copy", "fingerprints", "gate"] and copies == []
        events.clear()
        run.upsert("teams", [docs.team(id=2)], T1)
        result = run.publish()
    assert events == ["copy started", "fingerprints", "gate"]
    assert copies == [result.version_dir.name]  # done before the new version was switched in
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    con.close()
    assert result.changed_tables == ("teams", "teams_history")


def test_a_refused_publish_leaves_the_published_pair_and_no_folder_of_its_own(store):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        run.upsert("teams", [docs.team(id=3)], T1)
        run.publish()
        before = published_state(store)
        current = store.mode_dir.joinpath("current").resolve().name
        run.con.execute("INSERT INTO teams SELECT * FROM teams WHERE id = 1")  # a key held twice: refused
        with pytest.raises(PublishRefusedError):
            run.publish()
    # The version before the current one may already be gone (removed while the gate ran); the
    # published pair is the current one, untouched, and the refused version left nothing.
    after = published_state(store)
    assert after[:3] == before[:3]
    assert version_folders(store) == [current]


def test_a_clean_up_that_fails_does_not_fail_the_publish(store, monkeypatch, caplog):
    """Removing older versions is tidying: a folder that will not go is left for the next switch."""
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team(id=1)], T0)
        run.publish()
        run.publish()

        def stuck(targets, keep):
            raise PermissionError("injected: cannot remove")

        with monkeypatch.context() as patch:
            from jofi_pipeline.warehouse import publish as publish_module

            patch.setattr(publish_module, "remove_versions", stuck)
            patch.setattr(publish_module, "prune_versions", lambda targets, keep: None)
            run.upsert("teams", [docs.team(id=2)], T1)
            result = run.publish()
        assert "could not remove older published versions yet" in caplog.text
        assert store.mode_dir.joinpath("current").resolve() == result.version_dir
        assert len(version_folders(store)) == 3  # nothing removed, nothing lost
        run.publish()  # the next switch removes what was left
    assert len(version_folders(store)) == 2


def test_however_fast_the_copy_the_new_version_is_never_tidied_away(store):
    """The clean-up runs in the background while the copy may still run; it keeps the new folder."""
    with store.open_run("r1", T0) as run:
        run.upsert("teams", [docs.team(id=1)], T0)
        for i in range(6):
            run.upsert("teams", [docs.team(id=1, display_name=f"renamed {i}")], T1)
            result = run.publish()
            assert result.version_dir.is_dir()
            assert store.mode_dir.joinpath("current").resolve() == result.version_dir
            assert len(version_folders(store)) <= 2



def test_a_copy_staged_when_the_run_opens_is_the_one_its_publish_builds_in(tmp_path, monkeypatch):
    """A sync stages its copy as its run opens (RunWriter.stage_publish), so the copy and its flush
    overlap the fetching; the publish then builds in that folder instead of copying again."""
    store = filled(tmp_path / "data", published=True)
    copies: list[str] = []
    spy(monkeypatch, publish_staging, "copy_and_flush", lambda source, target: copies.append(target.parent.name))
    published = set(version_folders(store))
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        [staged] = set(version_folders(store)) - published
        run.upsert("teams", [docs.team(id=2)], T1)
        result = run.publish()
    assert copies == [staged] and result.version_dir.name == staged  # one copy, in the folder staged as the run opened
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    con.close()


def test_a_run_that_staged_a_copy_and_failed_leaves_every_version_folder_as_it_was(store):
    """Only a publish tidies the older versions away: a failed run leaves the mode folder as it found it."""
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()
        run.upsert("teams", [docs.team(id=2)], T1)
        run.publish()  # two versions now: the current one and the one before
    before = published_state(store)
    assert len(version_folders(store)) == 2
    with pytest.raises(RuntimeError, match="the fetching failed"):
        with store.open_run("r2", T1) as run:
            run.stage_publish()
            run.upsert("teams", [docs.team(id=3)], T1)
            raise RuntimeError("the fetching failed")
    assert published_state(store) == before  # the staged folder gone, the older version still there


def test_a_current_version_moved_by_hand_during_the_run_is_the_one_the_publish_starts_from(store, caplog):
    """The copy staged when the run opened is of the version current then. Someone who points
    `current` back at the version before (by hand, while the run fetched) gets a publish built on
    the version current now, not on the copy of the one they turned away from."""
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()
        older = store.mode_dir.joinpath("current").resolve()
        run.upsert("teams", [docs.team(id=2)], T1)
        run.publish()
    with store.open_run("r2", T1) as run:
        run.stage_publish()
        link = store.mode_dir / "current"
        link.unlink()
        link.symlink_to(older.name)  # by hand: back to the version with one team
        # The work data go back to what that version holds (team 2 never existed), so no table
        # differs from it: every table is carried over from the copy the publish starts from.
        run.con.execute("DELETE FROM teams WHERE id = 2")
        run.con.execute("DELETE FROM teams_history WHERE id = 2")
        result = run.publish()
    assert result.changed_tables == ()
    assert "the published version changed during the run" in caplog.text
    con = duckdb.connect(str(store.published_db_path), read_only=True)
    assert con.execute("SELECT list(id ORDER BY id) FROM teams").fetchone() == ([1],)
    con.close()


class Stop(BaseException):
    """A second Ctrl-C, or Dagster's stop, landing while the discard waits for the copy."""


def test_a_discard_interrupted_while_the_copy_runs_still_removes_the_folder(tmp_path, monkeypatch):
    store = filled(tmp_path / "data", published=True)
    release, copying = threading.Event(), threading.Event()
    real_copy = publish_staging.copy_and_flush

    def slow_copy(source, target):  # in the copy's thread: still writing when the interruption lands
        copying.set()
        release.wait(10)
        real_copy(source, target)

    monkeypatch.setattr(publish_staging, "copy_and_flush", slow_copy)
    before = version_folders(store)
    with interrupted_once(0.1, release, Stop):
        staged = publish_staging.StagedVersion(store.paths, store.mode_dir / "current" / "jofi.duckdb")
        assert copying.wait(5)
        with pytest.raises(Stop):
            staged.discard()
    assert not staged.version_dir.exists()
    assert version_folders(store) == before
