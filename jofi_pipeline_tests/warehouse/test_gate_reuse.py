"""The publish gate asks again only the rules whose tables changed since the last publish; every
other verdict is the one the published version's manifest holds. The result must be exactly what
asking every rule gives, and anything the last verdicts were not judged on (other rules, another
mode or account, a table changed by hand) is asked again."""

from __future__ import annotations

import json

import pytest

from jofi_pipeline.warehouse import integrity
from jofi_pipeline.warehouse import publish as publish_module
from jofi_pipeline.warehouse.errors import PublishRefusedError
from jofi_pipeline.warehouse.tables import TABLES
import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline_tests.warehouse.conftest import T0, T1, spy
from jofi_pipeline_tests.warehouse.test_publish import fill, filled

RULES = ("keys_unique", "mode_pure", "account_pure", "references")


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """The tables whose rules are asked of the database, in order (a reused verdict is not)."""
    heard: list[str] = []
    for name in RULES:
        spy(monkeypatch, integrity, name, lambda con, what, *args: heard.append(what if isinstance(what, str) else what.child))
    return heard


def every_rule_asked(run) -> list[integrity.Finding]:
    return integrity.findings(run.con, run.mode, run.account_id)


def test_a_second_publish_asks_only_the_rules_of_the_changed_tables(store, asked):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        assert len(asked) == len(every_rule_asked(run))  # the first gate asks every rule
        asked.clear()
        run.upsert("teams", [docs.team(id=3)], T1)
        run.publish()
        reused = run.findings
        assert set(asked) == {"teams", "teams_history"}  # keys and mode of each; no reference or account rule names them
        asked.clear()
        assert reused == every_rule_asked(run)


def test_a_publish_with_nothing_changed_asks_nothing_and_judges_the_same(store, asked):
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()
        first = run.findings
        asked.clear()
        run.publish()
        assert asked == []
        assert run.findings == first == every_rule_asked(run)


def test_a_changed_parent_asks_the_references_into_it_again(tmp_path, asked):
    store = filled(tmp_path / "data", published=True)
    asked.clear()
    with store.open_run("r2", T1) as run:
        run.con.execute("DELETE FROM test_takers")  # by hand: the scorecard and report now point nowhere
        with pytest.raises(PublishRefusedError, match="references"):
            run.publish()
        assert {"scorecards", "job_fit_reports", "invitations"} <= set(asked)
        assert run.findings == every_rule_asked(run)


def test_a_key_held_twice_by_hand_is_refused_though_the_last_gate_passed(store):
    before = None
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        before = store.published_db_path.resolve()
        run.con.execute("INSERT INTO teams SELECT * FROM teams WHERE id = 1")
        with pytest.raises(PublishRefusedError, match="teams.keys_unique_not_null"):
            run.publish()
    assert store.published_db_path.resolve() == before


def test_verdicts_judged_otherwise_are_asked_again(tmp_path, asked):
    """One warehouse, a manifest edited four ways in turn: each time every rule is asked again."""
    store = filled(tmp_path / "data", published=True)
    with store.open_run("r2", T1) as run:
        every = len(every_rule_asked(run))
        for unlike in ("rules", "mode", "account", "unreadable"):
            manifest_path = store.mode_dir / "current" / publish_module.FINGERPRINTS_NAME
            manifest = json.loads(manifest_path.read_text())
            judged = manifest["judged"]
            if unlike == "rules":
                judged["rules"] = "written-by-other-code"
            elif unlike == "mode":
                judged["mode"] = "test"
            elif unlike == "account":
                judged["account_id"] = 4242
            else:
                judged["findings"] = [{"check": "no such field"}]
            manifest_path.write_text(json.dumps(manifest))
            asked.clear()
            run.publish()
            assert len(asked) == every, unlike


def test_the_manifest_keeps_every_verdict_of_the_gate(store):
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()
        manifest = json.loads((store.mode_dir / "current" / publish_module.FINGERPRINTS_NAME).read_text())
        kept = integrity.Judged.from_json(manifest["judged"], {n: t["fingerprint"] for n, t in manifest["tables"].items()})
        assert kept is not None and list(kept.findings.values()) == run.findings
        assert kept.mode == "live" and kept.account_id == run.account_id and set(kept.fingerprints) == set(TABLES)


# -- the checks after a publish (defs/checks.py) read the same verdicts from the published file's manifest

def published_reader(store):
    from jofi_pipeline.warehouse import PublishedWarehouse

    return PublishedWarehouse(store.paths.mode, store.data_dir).open()


def test_the_checks_after_a_publish_read_the_gates_verdicts_and_counts_without_asking_again(store, asked):
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        gate = run.findings
    asked.clear()
    with published_reader(store) as reader:
        assert reader.verdicts("live", run.account_id) == gate
        assert asked == []
        assert reader.row_counts() == reader.counted_rows() and reader.row_counts()["teams"] == 2
        assert reader.findings("live", run.account_id) == gate  # what asking the published file again says


def test_a_published_file_changed_by_hand_is_judged_again(store):
    """The manifest's verdicts describe the file its publish wrote; a key added twice by hand later is found."""
    with store.open_run("r1", T0) as run:
        fill(run, n_teams=2)
        run.publish()
        gate_failed = [f.name for f in run.findings if not f.passed]  # a pending reference the fill leaves open
    import duckdb

    with duckdb.connect(str(store.published_db_path.resolve())) as con:  # someone opened it read-write
        con.execute("INSERT INTO teams SELECT * FROM teams WHERE id = 1")
    with published_reader(store) as reader:
        assert reader.recorded() is None
        failed = [f.name for f in reader.verdicts("live", run.account_id) if not f.passed]
        assert "teams.keys_unique_not_null" not in gate_failed
        assert set(failed) == {*gate_failed, "teams.keys_unique_not_null"}
        assert reader.row_counts()["teams"] == 3


@pytest.mark.parametrize("unlike", ["no file record", "rules", "account"])
def test_recorded_verdicts_that_do_not_fit_are_judged_again(store, asked, unlike):
    """A manifest written by older code (no record of the file), by other rules or for another account."""
    with store.open_run("r1", T0) as run:
        fill(run)
        run.publish()
        gate = run.findings
    manifest_path = store.mode_dir / "current" / publish_module.FINGERPRINTS_NAME
    manifest = json.loads(manifest_path.read_text())
    if unlike == "no file record":
        del manifest["db_file"]
    elif unlike == "rules":
        manifest["judged"]["rules"] = "written-by-other-code"
    manifest_path.write_text(json.dumps(manifest))
    account = 4242 if unlike == "account" else run.account_id
    asked.clear()
    with published_reader(store) as reader:
        found = reader.verdicts("live", account)
    assert len(asked) == len(gate)
    if unlike != "account":
        assert found == gate
    else:
        newly = {f.name for f in found if not f.passed} - {f.name for f in gate if not f.passed}
        assert newly and all(name.endswith(".account_pure") for name in newly)  # rows of account 4242 nowhere
