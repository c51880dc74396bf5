"""Issue 11, cases 1-3: a warehouse knows whose data it holds, a publish keeps the integrity rules,
the analyst's door is read-only. Each case as a user would meet it: the real CLI (forked by the
zygote) against the simulator, then the exact line they read and the bytes left on disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from jofi_pipeline.cli import app as cli

from jofi_pipeline.settings import ENV_LIVE_KEY, ENV_TEST_KEY
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.reliability.conftest import cli_env
from jofi_pipeline.harness.crash import SYNC


def tree_digest(root: Path) -> str:
    """Every file's bytes and every link's target under `root` (links not followed): 'nothing written'."""
    h = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(root)):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            h.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_symlink():
                h.update(b"link:" + os.readlink(path).encode())
            elif path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


def error_line(code: int, err: str) -> str:
    """The one `error:` line of a failed command (and no traceback)."""
    assert code == 1, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def synced(zygote, env, argv=SYNC) -> None:
    code, _, err = zygote.run(argv, env)
    assert code == 0, err


@pytest.fixture(scope="module")
def template(small_sim, tmp_path_factory) -> Path:
    """Both modes synced once from the module's simulator (in this process: how the folder was
    made is not what these tests check, the CLI runs they make on their copies are); each test
    works on its own copy."""
    from jofi_pipeline_tests.e2e.helpers import sync

    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_LIVE_KEY, small_sim.live_key)
        patch.setenv(ENV_TEST_KEY, small_sim.test_key)
        for mode in ("test", "live"):
            assert sync(small_sim, mode, root).status == "succeeded"
    return root


def copy_of(template: Path, into: Path, *modes: str) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        shutil.copytree(template / mode, into / mode, symlinks=True)
    return into


def account_of(mode_dir: Path) -> list[int]:
    with duckdb.connect(str(mode_dir / "jofi.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT id FROM account ORDER BY id").fetchall()]


# ---- case 1: another mode's folder --------------------------------------------------------------

@pytest.mark.parametrize("how", ["copy", "link", "link inside"])
def test_case1_a_test_folder_copied_or_linked_as_live_is_refused_before_anything_is_written(sim, zygote, tmp_path, how, template):
    env = cli_env(sim, copy_of(template, tmp_path, "test"))
    test_account = account_of(tmp_path / "test")
    if how == "copy":
        shutil.copytree(tmp_path / "test", tmp_path / "live", symlinks=True)
    elif how == "link":
        (tmp_path / "live").symlink_to("test")
    else:
        (tmp_path / "test" / "old").mkdir()
        (tmp_path / "live").symlink_to("test/old")
    before = tree_digest(tmp_path)
    line = error_line(*zygote.run(SYNC, env)[::2])
    if how == "copy":
        assert f"holds test data of account {test_account[0]}" in line and "this sync reads live data of account" in line
        assert "move" in line and str(tmp_path / "live") in line
    else:
        assert "the live folder" in line and "the test folder" in line and "remove the link" in line.lower()
        assert ("same place" if how == "link" else "one inside the other") in line
    assert "nothing was written" in line
    assert tree_digest(tmp_path) == before, "the refused run wrote nothing, in either folder"
    assert account_of(tmp_path / "test") == test_account


def test_case1_another_folders_work_database_copied_in_is_refused_before_anything_is_written(sim, zygote, tmp_path, template):
    env = cli_env(sim, copy_of(template, tmp_path, "test", "live"))
    shutil.copy(tmp_path / "test" / "work" / "jofi_work.duckdb", tmp_path / "live" / "work" / "jofi_work.duckdb")
    before = tree_digest(tmp_path)
    line = error_line(*zygote.run(SYNC, env)[::2])
    test_account = account_of(tmp_path / "test")[0]
    assert f"the working database {tmp_path / 'live' / 'work' / 'jofi_work.duckdb'} holds test data of account {test_account}" in line
    assert "nothing was written" in line
    assert tree_digest(tmp_path) == before


def test_case1_foreign_rows_in_the_work_database_stop_the_publish_and_leave_it_byte_identical(sim, zygote, tmp_path, template):
    """The gate: rows of the other mode merged into a table (what identity.json and the account row
    cannot see) stop the publish before anything is replaced."""
    env = cli_env(sim, copy_of(template, tmp_path, "test", "live"))
    with duckdb.connect(str(tmp_path / "live" / "work" / "jofi_work.duckdb")) as con:
        con.execute(f"ATTACH '{tmp_path / 'test' / 'work' / 'jofi_work.duckdb'}' AS other (READ_ONLY)")
        foreign = con.execute("INSERT INTO test_takers SELECT * FROM other.test_takers").fetchone()[0]
    published = (tmp_path / "live" / "jofi.duckdb").resolve()
    before = tree_digest(published.parent)
    line = error_line(*zygote.run(SYNC, env)[::2])
    assert line.startswith("error: live sync failed: publish refused, the published warehouse is unchanged: "
                           f"test_takers.mode_pure: {foreign} rows of mode test in the live warehouse"), line
    assert "test_takers.account_pure" in line and "Modes never mix" in line
    assert (tmp_path / "live" / "jofi.duckdb").resolve() == published
    assert tree_digest(published.parent) == before


def test_case1_duplicate_keys_and_dangling_references_in_the_work_database_stop_the_publish(sim, zygote, tmp_path, template):
    """The gate's other two rules: one row per key, and references the sync itself guarantees."""
    env = cli_env(sim, copy_of(template, tmp_path, "live"))
    with duckdb.connect(str(tmp_path / "live" / "work" / "jofi_work.duckdb")) as con:
        team = con.execute("SELECT min(id) FROM teams").fetchone()[0]
        con.execute("INSERT INTO teams SELECT * FROM teams WHERE id = ?", [team])
        con.execute("INSERT INTO scorecard_scores SELECT * REPLACE (999999999 AS test_taker_id) FROM scorecard_scores LIMIT 1")
    published = (tmp_path / "live" / "jofi.duckdb").resolve()
    before = tree_digest(published.parent)
    line = error_line(*zygote.run(SYNC, env)[::2])
    assert line.startswith("error: live sync failed: publish refused, the published warehouse is unchanged: "), line
    assert "teams.keys_unique_not_null: 1 key (id) held twice and 0 rows without a key" in line
    assert ("scorecard_scores.references_scorecards_test_taker_id_score_profile_short_name: 1 scorecard_scores row -> "
            "its scorecards row references") in line
    assert (tmp_path / "live" / "jofi.duckdb").resolve() == published
    assert tree_digest(published.parent) == before


def test_case1_import_ids_watch_and_the_receiver_refuse_another_modes_folder_and_write_nothing(sim, zygote, tmp_path, template):
    """The writers that do not know the account check the folders and the mode before writing."""
    env = cli_env(sim, copy_of(template, tmp_path, "test"), JOFI_WEBHOOK_SECRET="whsec_isolation_only")
    shutil.copytree(tmp_path / "test", tmp_path / "live", symlinks=True)
    ids = tmp_path.parent / f"{tmp_path.name}-ids.txt"
    ids.write_text("101\n")
    before = tree_digest(tmp_path)
    refusal = f"error: {tmp_path / 'live'} holds test data of account {account_of(tmp_path / 'test')[0]}"
    for argv in (["import-ids", str(ids), "--kind", "test-takers", "--mode", "live"], ["watch", "--mode", "live", "--once"]):
        line = error_line(*zygote.run(argv, env)[::2])
        assert line.startswith(refusal) and "not live data: nothing was written" in line, (argv, line)
    receiver = subprocess.run([str(Path(sys.executable).with_name("jofi-pipeline")), "webhooks", "--port", "0"],
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert error_line(receiver.returncode, receiver.stderr).startswith(refusal), receiver.stderr
    assert not (tmp_path / "live" / "inbox").exists()
    assert tree_digest(tmp_path) == before


# ---- case 2: another account ----------------------------------------------------------------

def test_case2_a_second_account_in_the_same_folder_is_refused(sim, zygote, tmp_path, make_simulator, template):
    copy_of(template, tmp_path, "live")
    mine = account_of(tmp_path / "live")
    before = tree_digest(tmp_path)
    other = make_simulator(test_takers=5, test_world_test_takers=5, seed=8)
    line = error_line(*zygote.run(SYNC, cli_env(other, tmp_path))[::2])
    theirs = other.truth("live")["account"]["id"]
    assert theirs != mine[0]
    assert f"holds live data of account {mine[0]}" in line and f"reads live data of account {theirs}" in line
    assert "new folder" in line and "nothing was written" in line
    assert tree_digest(tmp_path) == before
    synced(zygote, cli_env(other, tmp_path / "other"))  # a new folder is the way, and it works
    assert account_of(tmp_path / "other" / "live") == [theirs]


def test_case2_an_older_warehouse_is_adopted_from_its_data_and_one_that_mixes_accounts_is_refused(sim, zygote, tmp_path, template):
    env = cli_env(sim, copy_of(template, tmp_path, "live"))
    identity = tmp_path / "live" / "identity.json"
    recorded = json.loads(identity.read_text())
    assert recorded["mode"] == "live" and recorded["account_id"] == account_of(tmp_path / "live")[0]
    identity.unlink()  # as every warehouse built before identities were recorded
    synced(zygote, env)
    assert {k: v for k, v in json.loads(identity.read_text()).items() if k in ("mode", "account_id", "api_host")} == {
        k: recorded[k] for k in ("mode", "account_id", "api_host")
    }, "adopted from its data"

    identity.unlink()  # and an older warehouse that two accounts' keys already wrote into
    work = tmp_path / "live" / "work" / "jofi_work.duckdb"
    with duckdb.connect(str(work)) as con:
        con.execute("INSERT INTO account (id, display_name, _mode) VALUES (4242, 'Another Inc', 'live')")
    before = tree_digest(tmp_path)
    line = error_line(*zygote.run(SYNC, env)[::2])
    assert f"already mixes accounts {', '.join(map(str, sorted([recorded['account_id'], 4242])))}" in line
    assert "move it aside" in line.lower() and "nothing was written" in line
    assert tree_digest(tmp_path) == before


def test_case2_the_same_account_at_another_api_host_is_refused_until_its_identity_is_deleted(sim, zygote, tmp_path, template):
    """The host is part of the identity; the README's way for a moved API: delete identity.json."""
    assert "//127.0.0.1:" in sim.base_url
    env = cli_env(sim, copy_of(template, tmp_path, "live"), JOFI_API_BASE_URL=sim.base_url.replace("//127.0.0.1:", "//localhost:"))
    mine = account_of(tmp_path / "live")[0]
    before = tree_digest(tmp_path)
    line = error_line(*zygote.run(SYNC, env)[::2])
    assert f"holds live data of account {mine} at 127.0.0.1" in line and f"reads live data of account {mine} at localhost" in line
    assert f"delete {tmp_path / 'live' / 'identity.json'}" in line and "nothing was written" in line
    assert tree_digest(tmp_path) == before
    (tmp_path / "live" / "identity.json").unlink()
    synced(zygote, env)
    recorded = json.loads((tmp_path / "live" / "identity.json").read_text())
    assert (recorded["account_id"], recorded["api_host"]) == (mine, "localhost")


# ---- case 3: the analyst's door ------------------------------------------------------------------

REFUSED = {
    "COPY over the inbox": ("COPY (SELECT 1 x) TO '{data}/live/inbox/events.sqlite' (FORMAT csv)", "COPY reads or writes files"),
    "COPY over the work DB": ("COPY (SELECT 1 x) TO '{data}/live/work/jofi_work.duckdb'", "COPY reads or writes files"),
    "COPY over a Parquet file": ("COPY test_takers TO '{data}/live/parquet/test_takers/part-0.parquet' (FORMAT parquet)",
                                 "COPY reads or writes files"),
    "COPY outside": ("COPY (SELECT 1) TO '{outside}/out.csv'", "COPY reads or writes files"),
    "second statement": ("SELECT 1; COPY (SELECT 1) TO '{outside}/out2.csv'", "statement 2 of 2"),
    "EXPORT": ("EXPORT DATABASE '{outside}/export'", "EXPORT DATABASE writes files"),
    "ATTACH": ("ATTACH '{outside}/new.duckdb' AS other", "ATTACH opens another database"),
    "INSTALL": ("INSTALL httpfs", "INSTALL/LOAD adds extensions"),
    "LOAD": ("LOAD httpfs", "INSTALL/LOAD adds extensions"),
    "SET": ("SET enable_external_access = true", "configuration is locked"),
    "RESET": ("RESET lock_configuration", "configuration is locked"),
    "PRAGMA setter": ("PRAGMA enable_profiling", "only read-only ones"),
    "IMPORT": ("IMPORT DATABASE '{outside}/export'", "IMPORT DATABASE reads files"),
    "CREATE TEMP": ("CREATE TEMP TABLE t AS SELECT 1", "CREATE would change the database"),
    "DELETE": ("DELETE FROM test_takers", "DELETE would change the database"),
    "CHECKPOINT": ("CHECKPOINT", "only catalog functions"),
    "EXPLAIN ANALYZE of a COPY": ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{outside}/e.csv'", "COPY reads or writes files"),
    "read a file": ("SELECT * FROM read_csv('/etc/passwd')", "reads or writes files outside the published database"),
    "read Parquet": ("SELECT count(*) FROM '{data}/live/parquet/test_takers/part-0.parquet'",
                     "reads or writes files outside the published database"),
    "glob": ("SELECT * FROM glob('{data}/*')", "reads or writes files outside the published database"),
}
READS = ["SELECT count(*) AS n FROM test_takers", "SHOW TABLES", "DESCRIBE invitations", "PRAGMA table_info('account')",
         "EXPLAIN SELECT * FROM users", "CALL duckdb_tables()", "FROM users LIMIT 1"]


def test_case3_the_sql_door_refuses_every_write_and_file_access_in_one_line_and_changes_no_byte(sim, tmp_path, template):
    """Through the CLI's own code in this process (CliRunner): one `sql` command per statement."""
    data, outside = copy_of(template, tmp_path / "data", "live", "test"), tmp_path / "outside"
    outside.mkdir()
    with Inbox.open(ModePaths(data, "live").inbox) as inbox:  # an inbox with an event, the COPY's first target
        inbox.add_event("evt_1", "test_taker.created", None, "{}", [("test_takers", "12")])
    before, outside_before = tree_digest(data), tree_digest(outside)
    runner = CliRunner()
    for name, (query, reason) in REFUSED.items():
        result = runner.invoke(cli, ["sql", query.format(data=data, outside=outside), "--mode", "live", "--data-dir", str(data)])
        line = error_line(result.exit_code, result.stderr)
        assert line.startswith("error: refused") and reason in line, (name, line)
        assert result.stdout == "", (name, result.stdout)
    for query in READS:
        result = runner.invoke(cli, ["sql", query, "--mode", "live", "-f", "csv", "--data-dir", str(data)])
        assert result.exit_code == 0 and result.stdout.strip(), (query, result.stderr)
    assert tree_digest(data) == before, "not one byte of the data dir changed"
    assert tree_digest(outside) == outside_before and not any(outside.iterdir()), "nothing written outside"
