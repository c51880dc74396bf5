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
    """The published state, after checking it is whole; None when nothing was published yet.

    The checks are a function of the published files' bytes and the table registry, so a state
    this process already observed whole is not read again: a crash that left the state before
    the run (half the kill -9 trials, a failed run) is that state, byte for byte."""
    paths = _paths(mode_dir)
    if not paths.published_db.exists():
        return None
    digest = files_digest(mode_dir)
    seen = (digest, _wal_digest(paths.published_db), _registry_fingerprint())
    if seen not in _observed:
        _observed[seen] = _checked(paths, digest)
    return _observed[seen]


# Observations this process made, by what they were made of (a state that failed a check is not kept).
_observed: dict[tuple[str, str, tuple], Published] = {}


def _wal_digest(published_db: Path) -> str:
    """A write-ahead log DuckDB would read along with the file (none after a publish's checkpoint)."""
    wal = Path(f"{published_db.resolve()}.wal")
    return hashlib.sha256(wal.read_bytes()).hexdigest() if wal.exists() else ""


def _registry_fingerprint() -> tuple:
    """The tables, columns and keys the checks are made of (a test may patch the registry)."""
    return tuple((name, spec.kind, tuple(spec.column_names), tuple(spec.key)) for name, spec in TABLES.items())


def _checked(paths: ModePaths, digest: str) -> Published:
    with duckdb.connect(str(paths.published_db), read_only=True, config={"threads": 1}) as con:
        assert_no_duplicate_keys(con)
        in_database = rows_digests(con, {name: f'"{name}"' for name in TABLES})
        assert_parquet_matches_database(con, paths.parquet, in_database)
        assert_history_whole(con)
        rows = {t: digest for t, digest in in_database.items() if t not in RUN_TABLES}
        run_ids = frozenset(r for (r,) in con.execute("SELECT run_id FROM sync_runs").fetchall())
        history = frozenset(versions(con))
    return Published(digest, rows, run_ids, history)


def assert_history_whole(con: duckdb.DuckDBPyConnection) -> None:
    """Clean version chains that agree with the current tables: no version lost or duplicated."""
    problems = chain_problems(con) + disagreements(con)
    assert not problems, f"history: {problems[:3]}"


def rows_digests(con: duckdb.DuckDBPyConnection, sources: dict[str, str]) -> dict[str, str]:
    """Per table, the multiset of its rows (run timestamps left out) as `count:sum of row hashes`,
    read from `sources` (a table, or its Parquet files) in one query.

    Summed in DuckDB, not fetched and sorted in Python, and one query for all tables: each kill -9
    test observes the warehouse 11 times (5 trials), and ~90 small queries per observation were
    most of its own CPU. Order-free; a repeated row counts twice; values are cast to text
    first, so a table and its Parquet files digest alike."""
    parts = []
    for name, source in sources.items():
        row = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in TABLES[name].column_names if c not in RUN_COLUMNS)
        parts.append(f"SELECT '{name}' AS name, count(*) AS n, coalesce(sum(hash({row})::HUGEINT), 0) AS total FROM {source}")
    return {name: f"{n}:{total}" for name, n, total in con.execute(" UNION ALL ".join(parts)).fetchall()}


def assert_no_duplicate_keys(con: duckdb.DuckDBPyConnection) -> None:
    parts = [
        f"""(SELECT '{name}', list_value({", ".join(f'CAST("{k}" AS VARCHAR)' for k in spec.key)})::VARCHAR FROM "{name}" """
        f"""GROUP BY {", ".join(f'"{k}"' for k in spec.key)} HAVING count(*) > 1 LIMIT 3)"""
        for name, spec in TABLES.items()
    ]
    dups = con.execute(" UNION ALL ".join(parts)).fetchall()
    assert not dups, f"duplicate keys: {dups}"


def assert_parquet_matches_database(con: duckdb.DuckDBPyConnection, parquet: Path, in_database: dict[str, str]) -> None:
    """The DuckDB file and the Parquet tree must come from the same publish: same rows, same runs."""
    in_files = rows_digests(con, {name: f"read_parquet('{parquet / name}/*.parquet')" for name in TABLES})
    for name in TABLES:
        assert in_files[name] == in_database[name], (
            f"published DuckDB and Parquet disagree on {name}: a publish was half done"
        )
