"""Atomic publish of the work database as an analyst DuckDB file and a Parquet tree.

Each publish builds one version directory holding both copies, then makes it visible with ONE
rename, so the DuckDB file and the Parquet tree can never disagree, whatever instant a crash hits:

    jofi.duckdb -> current/jofi.duckdb     (fixed symlink)
    parquet     -> current/parquet         (fixed symlink)
    current     -> published.<v>           (the one switch: os.replace of a new symlink)
    published.<v>/jofi.duckdb, published.<v>/parquet/<table>/part-0.parquet

Readers holding an old file open keep reading its inode (POSIX), so an analyst never blocks a
publish; the previous version is kept for readers mid-scan. If anything fails before the switch,
the version directory is removed and the published copies are untouched. An older layout (a real
`jofi.duckdb` file, `parquet -> parquet.<v>`) is converted on the first publish after the switch;
the fixed links are re-asserted by every publish, so a crash during that conversion heals on the
next run.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from jofi_pipeline.warehouse.errors import PublishError
from jofi_pipeline.warehouse.paths import CURRENT_LINK, DB_NAME, PARQUET_NAME, ModePaths
from jofi_pipeline.warehouse.records import PublishResult
from jofi_pipeline.warehouse.schema import ensure_schema, ident, literal, qualified
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

# Written so DuckDB 1.4 tools (CLI, older client libraries) can open the published file.
PUBLISHED_STORAGE_VERSION = "v1.4.0"
PUBLISH_CATALOG = "jofi_publishing"
TMP_DB_PREFIX = f".{DB_NAME}.publishing-"
VERSION_PREFIX = "published."
LEGACY_VERSION_PREFIX = "parquet."  # Parquet versions of the two-rename layout, pruned on publish


def publish(con: duckdb.DuckDBPyConnection, targets: ModePaths) -> PublishResult:
    started = time.perf_counter()
    remove_stale_temporaries(targets)
    token = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    version_dir = targets.mode_dir / f"{VERSION_PREFIX}{token}"
    db_file, parquet_dir = version_dir / DB_NAME, version_dir / PARQUET_NAME
    try:
        version_dir.mkdir()
        row_counts = build_database(con, db_file, parquet_dir)
        fsync_tree(version_dir)
    except Exception as exc:
        remove_quietly(version_dir)
        raise PublishError(f"publish failed before anything was replaced; the published copies are unchanged: {exc}") from exc
    except BaseException:
        remove_quietly(version_dir)
        raise
    previous = swap_symlink(targets.current, Path(version_dir.name))  # the moment the new pair becomes visible
    ensure_fixed_links(targets)
    prune_versions(targets, keep={version_dir.name, previous})
    return PublishResult(
        published_db_path=targets.published_db,
        parquet_dir=targets.parquet,
        parquet_version_dir=parquet_dir,
        row_counts=row_counts,
        seconds=time.perf_counter() - started,
        version_dir=version_dir,
    )


def build_database(con: duckdb.DuckDBPyConnection, tmp_db: Path, version_dir: Path) -> dict[str, int]:
    """Copy every table (with comments) and the views into a new file; Parquet from the copy."""
    con.execute(f"ATTACH {literal(str(tmp_db))} AS {ident(PUBLISH_CATALOG)} (STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})")
    try:
        ensure_schema(con, PUBLISH_CATALOG)
        row_counts = copy_tables(con)
        create_views(con)
        write_parquet(con, version_dir)
        con.execute(f"CHECKPOINT {ident(PUBLISH_CATALOG)}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {ident(PUBLISH_CATALOG)}")
    if Path(f"{tmp_db}.wal").exists():
        raise RuntimeError(f"publish left a WAL next to {tmp_db}; the copy is not self-contained")
    return row_counts


def copy_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = {}
    for spec in TABLES.values():
        target = qualified(spec.name, PUBLISH_CATALOG)
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {ident(spec.name)}")
        counts[spec.name] = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    return counts


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the analyst views; a view column without its own comment borrows the comment of
    the first table column with the same name, so every column explains itself."""
    table_comments: dict[str, str] = {}
    for spec in TABLES.values():
        for column in spec.all_columns:
            table_comments.setdefault(column.name, column.comment)
    for view in VIEWS:
        target = qualified(view.name, PUBLISH_CATALOG)
        con.execute(f"CREATE OR REPLACE VIEW {target} AS {view.sql}")
        con.execute(f"COMMENT ON VIEW {target} IS {literal(view.comment)}")
        columns = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
            [PUBLISH_CATALOG, view.name],
        ).fetchall()
        for (column,) in columns:
            comment = view.column_comments.get(column) or table_comments.get(column)
            if comment:
                con.execute(f"COMMENT ON COLUMN {target}.{ident(column)} IS {literal(comment)}")


def write_parquet(con: duckdb.DuckDBPyConnection, version_dir: Path) -> None:
    """One directory per table, one file each (an empty table still gets a file with its schema)."""
    for spec in TABLES.values():
        table_dir = version_dir / spec.name
        table_dir.mkdir(parents=True, exist_ok=True)
        target = table_dir / "part-0.parquet"
        con.execute(
            f"COPY (SELECT * FROM {qualified(spec.name, PUBLISH_CATALOG)}) TO {literal(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )


def ensure_fixed_links(targets: ModePaths) -> None:
    """`jofi.duckdb` and `parquet` point through `current`; replace whatever else is there."""
    for path, name in ((targets.published_db, DB_NAME), (targets.parquet, PARQUET_NAME)):
        wanted = f"{CURRENT_LINK}/{name}"
        if not (path.is_symlink() and os.readlink(path) == wanted):
            swap_symlink(path, Path(wanted))


def swap_symlink(link: Path, target: Path) -> str | None:
    """Point `link` at `target`, a path relative to the link's folder, atomically; return the old target.

    Relative, so the data dir can move (and a relative JOFI_DATA_DIR cannot produce a link that
    resolves from the wrong folder).

    A real file there (older layout, or a corrupt copy) is replaced atomically by the rename; a
    real directory is moved aside once (pruned later).
    """
    previous = os.readlink(link) if link.is_symlink() else None
    if link.is_dir() and not link.is_symlink():
        link.rename(link.with_name(f"{LEGACY_VERSION_PREFIX}legacy-{uuid.uuid4().hex[:8]}"))
    tmp_link = link.with_name(f".{link.name}.swap-{uuid.uuid4().hex[:8]}")
    if target.is_absolute():
        raise ValueError(f"symlink target must be relative to {link.parent}, got {target}")
    os.symlink(str(target), tmp_link)
    try:
        os.replace(tmp_link, link)
    except BaseException:
        remove_quietly(tmp_link)
        raise
    fsync_path(link.parent)
    return previous


def prune_versions(targets: ModePaths, keep: set[str | None]) -> None:
    """Drop versions except the current and the previous one (a reader may be mid-scan)."""
    for prefix in (VERSION_PREFIX, LEGACY_VERSION_PREFIX):
        for path in targets.mode_dir.glob(f"{prefix}*"):
            if path.is_dir() and not path.is_symlink() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


def remove_stale_temporaries(targets: ModePaths) -> None:
    """Temp files a crashed publish left behind (we hold the writer lock, so none is live)."""
    for path in targets.mode_dir.glob(f"{TMP_DB_PREFIX}*"):
        remove_quietly(path)
    for link in (CURRENT_LINK, DB_NAME, PARQUET_NAME):
        for path in targets.mode_dir.glob(f".{link}.swap-*"):
            remove_quietly(path)


def remove_quietly(*paths: Path) -> None:
    for path in paths:
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
        except FileNotFoundError:
            pass


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))
