"""What every reliability case checks: the published pair is whole, keys are unique, history
chains are clean, and the published state is exactly one run's (digest of the files + the data
rows without timestamps)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from jofi_pipeline.harness.history_oracle import chain_problems, disagreements, versions
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.warehouse.tables import TABLES

# Tables whose rows say *when/which run* rather than what JOFI holds: not compared across runs.
RUN_TABLES = frozenset(name for name, spec in TABLES.items() if spec.kind in ("run_log", "state"))
RUN_COLUMNS = ("_first_synced_at", "_last_synced_at")


@dataclass(frozen=True)
class Published:
    """One observation of a mode's published warehouse."""

    digest: str  # sha256 over the DuckDB file and every Parquet file the links resolve to
    rows: dict[str, str]  # per data table: sha256 of its sorted rows, run timestamps left out
    run_ids: frozenset[str]
    history: frozenset[tuple] = frozenset()  # every version ever opened (history_oracle.versions)

    @property
    def data_digest(self) -> str:
        return hashlib.sha256(repr(sorted(self.rows.items())).encode()).hexdigest()


def _paths(mode_dir: Path) -> ModePaths:
    return ModePaths(mode_dir.parent, mode_dir.name)


def files_digest(mode_dir: Path) -> str:
    paths = _paths(mode_dir)
    h = hashlib.sha256()
    h.update(paths.published_db.resolve().read_bytes())
    parquet = paths.parquet.resolve()
    for path in sorted(parquet.rglob("*.parquet")):
        h.update(str(path.relative_to(parquet)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def observe(mode_dir: Path) -> Published | None:
    """The published state, after checking it is whole; None when nothing was published yet."""
    paths = _paths(mode_dir)
    if not paths.published_db.exists():
        return None
    digest = files_digest(mode_dir)
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        assert_no_duplicate_keys(con)
        assert_parquet_matches_database(con, paths.parquet)
        assert_history_whole(con)
        rows = {t: table_rows_digest(con, t) for t in TABLES if t not in RUN_TABLES}
        run_ids = frozenset(r for (r,) in con.execute("SELECT run_id FROM sync_runs").fetchall())
        history = frozenset(versions(con))
    return Published(digest, rows, run_ids, history)


def assert_history_whole(con: duckdb.DuckDBPyConnection) -> None:
    """Clean version chains that agree with the current tables: no version lost or duplicated."""
    problems = chain_problems(con) + disagreements(con)
    assert not problems, f"history: {problems[:3]}"


def table_rows_digest(con: duckdb.DuckDBPyConnection, table: str, source: str | None = None) -> str:
    columns = [c for c in TABLES[table].column_names if c not in RUN_COLUMNS]
    select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
    rows = con.execute(f"SELECT {select} FROM {source or table}").fetchall()
    return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()


def assert_no_duplicate_keys(con: duckdb.DuckDBPyConnection) -> None:
    for name, spec in TABLES.items():
        key = ", ".join(f'"{k}"' for k in spec.key)
        dups = con.execute(f'SELECT {key}, count(*) FROM "{name}" GROUP BY ALL HAVING count(*) > 1 LIMIT 3').fetchall()
        assert not dups, f"duplicate keys in {name}: {dups}"


def assert_parquet_matches_database(con: duckdb.DuckDBPyConnection, parquet: Path) -> None:
    """The DuckDB file and the Parquet tree must come from the same publish: same rows, same runs."""
    for name in TABLES:
        files = f"read_parquet('{parquet / name}/*.parquet')"
        assert table_rows_digest(con, name, files) == table_rows_digest(con, name), (
            f"published DuckDB and Parquet disagree on {name}: a publish was half done"
        )
