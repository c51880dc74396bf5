"""Atomic publish of the work database as an analyst DuckDB file and a Parquet tree.

Each publish builds one version directory holding both copies, then makes it visible with ONE
rename, so the DuckDB file and the Parquet tree can never disagree, whatever instant a crash hits:

    jofi.duckdb -> current/jofi.duckdb     (fixed symlink)
    parquet     -> current/parquet         (fixed symlink)
    current     -> published.<v>           (the one switch: os.replace of a new symlink)
    published.<v>/jofi.duckdb, published.<v>/parquet/<table>/part-0.parquet

Readers holding an old file open keep reading its inode (POSIX), so an analyst never blocks a
publish; the previous version is kept for readers mid-scan (the ones before it are removed while
the next publish runs, publish_staging.py). If anything fails before the switch,
the version directory is removed and the published copies are untouched. An older layout (a real
`jofi.duckdb` file, `parquet -> parquet.<v>`) is converted on the first publish after the switch;
the fixed links are re-asserted by every publish, so a crash during that conversion heals on the
next run.

Incremental: only what changed is rewritten. Each version holds `fingerprints.json` with one
fingerprint per table (a digest of its DDL and comments, its row count and an order-independent
sum of its row hashes, computed in SQL over the work database). The next publish starts from a
copy of the current version's DuckDB file (made and flushed to disk in a background thread while
the gate runs, publish_staging.py), drops and rebuilds only the tables whose fingerprint
moved (and any table no longer in the registry), and hard-links the unchanged tables' Parquet
files instead of writing them again. Every table of the registry is covered, whoever writes it;
without a usable manifest (first publish, older layout, another storage version) the whole
database is built as before. A changed `<table>_history` table is patched in the copy instead of
rebuilt (only the rows written since, publish_history.py), when the fingerprints prove the patch
exact. Three lanes run at once, each on a connection of its own: the changed tables' Parquet
(written from the work database), the history patches and the other tables' copies; one after
the other they left a core idle. They share the work database's memory limit, so a work database
past half of it (LANES_UP_TO_BYTES: a first sync of thousands of test takers) runs them one after
the other. A patched history table's Parquet thus equals its table in
the file by the patch's proof (the fingerprints), as the file's table equals the work table.
The new version is still a complete, self-contained pair made visible by the one switch, so
nothing about atomicity changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from jofi_pipeline.warehouse.as_of import AS_OF_MACROS
from jofi_pipeline.warehouse.diagnose import is_damaged
from jofi_pipeline.warehouse.errors import PublishError, out_of_memory
from jofi_pipeline.warehouse.parquet_schema import LAYOUT as PARQUET_LAYOUT
from jofi_pipeline.warehouse.parquet_schema import described_schema, kv_metadata_option
from jofi_pipeline.warehouse.paths import CURRENT_LINK, DB_NAME, PARQUET_NAME, ModePaths
from jofi_pipeline.warehouse.publish_history import Fingerprint, apply_patch, latest_instant_sql, latest_instants, patch_history
from jofi_pipeline.warehouse.publish_staging import VERSION_PREFIX, StagedVersion
from jofi_pipeline.warehouse.publish_template import copy_empty_database
from jofi_pipeline.warehouse.records import PublishResult
from jofi_pipeline.warehouse.schema import comment_sql, create_table_sql, ensure_schema, ident, literal, qualified
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

log = logging.getLogger(__name__)

# Written so DuckDB 1.4 tools (CLI, older client libraries) can open the published file.
PUBLISHED_STORAGE_VERSION = "v1.4.0"
PUBLISH_CATALOG = "jofi_publishing"
TMP_DB_PREFIX = f".{DB_NAME}.publishing-"
LEGACY_VERSION_PREFIX = "parquet."  # Parquet versions of the two-rename layout, pruned on publish
FINGERPRINTS_NAME = "fingerprints.json"
FINGERPRINTS_FORMAT = 1
PARQUET_FILE = "part-0.parquet"
# In a staged version: the history tables' Parquet files written ahead of the publish
# (publish_ahead.py), moved into the tree by the publish when still exact, the folder then removed.
AHEAD_DIR = ".ahead"
# Parquet row groups are buffered whole before they are written; with `_raw` JSON a default
# 122,880-row group of scorecards is over 500 MB, more than the work database may use (the publish
# of 10,000 test takers ran out of memory). Cut row groups by size instead.
PARQUET_ROW_GROUP_BYTES = "16MB"
# zstd's fastest level: the published tables' Parquet took ~25 % less time to write than at
# DuckDB's default level, for files within 0.5 % of the same size (11 largest tables of a
# 1,000-test-taker warehouse: 0.268 vs 0.349 s, 3.47 vs 3.48 MB). Any zstd reader reads any level.
PARQUET_ZSTD_LEVEL = 1
# More than 1: the Parquet and history lanes beside the copies (build_database, two threads);
# 1: one after the other (bench/publish_lanes.py compares).
PUBLISH_LANES = 3
# The lanes' statements share the work database's memory limit (settings.work_memory(), at
# least 128 MB). Three at once ran out of it publishing a first sync of 10,000 test takers ("failed to
# allocate data of size 15.4 MiB (112.6 MiB/122.0 MiB used)"), which one after the other
# publishes (bench/targets.py --only rss,publish). So a work database past half the limit
# publishes in one lane; the nightlies the lanes were built for are far smaller.
LANES_UP_TO_BYTES = 64 * 1000**2  # DuckDB counts MB in powers of ten
ONE_LANE_THREADS = 1  # DuckDB threads of a one-lane build (build_database)
# The code that writes the empty database a full build copies: part of that file's key.
EMPTY_DATABASE_MADE_BY = (__name__, "jofi_pipeline.warehouse.schema")


def publish(
    con: duckdb.DuckDBPyConnection, targets: ModePaths, *, fingerprints: dict[str, str] | None = None,
    previous: PreviousVersion | None | Literal["read"] = "read", judged: dict[str, Any] | None = None,
    staged: StagedVersion | None = None, ahead: dict[str, str] | None = None,
) -> PublishResult:
    """`fingerprints` and `previous` when the caller has them already (the gate reads both);
    `judged`, the gate's verdicts, kept in the manifest for the next gate (integrity.Judged);
    `staged`, the new version's folder with the copy of `previous` already under way
    (`staged_for(targets, previous, ...)`, started before the gate). The publish owns it from here.
    `ahead`: the history tables patched into `staged`'s copy ahead of the publish, and the
    fingerprint each was patched to (publish_ahead.py: its batches finished)."""
    started = time.perf_counter()
    try:
        remove_stale_temporaries(targets)
        previous = previous_version(targets) if previous == "read" else previous
        staged = staged if staged is not None else staged_for(targets, previous, None)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    version_dir = staged.version_dir
    db_file, parquet_dir = version_dir / DB_NAME, version_dir / PARQUET_NAME
    try:
        fingerprints = fingerprints if fingerprints is not None else table_fingerprints(con)
        try:
            row_counts, changed = build_database(con, staged, parquet_dir, fingerprints, previous, ahead)
        except (duckdb.Error, UnusableCopy) as exc:
            if previous is None or not (isinstance(exc, UnusableCopy) or is_damaged(exc)):
                raise
            # The current version's file is damaged: build the new one whole, not from a copy of it.
            log.warning("%s: the published copy is damaged (%s); publishing a complete new one", targets.mode, exc)
            remove_quietly(db_file, Path(f"{db_file}.wal"), parquet_dir)
            row_counts, changed = build_database(con, staged, parquet_dir, fingerprints, None)
        write_fingerprints(version_dir, fingerprints, row_counts, judged)
        # The carried-over tables' Parquet files are links to bytes already on disk: only their
        # new directory entries need flushing, which fsyncing every directory does.
        fsync_tree(version_dir, carried={parquet_dir / name for name in TABLES if name not in changed})
        # The moment the new pair becomes visible, the try's last step: the rename is atomic, so a
        # failure up to it (no room for the new link, say) switched nothing.
        previous = swap_symlink(targets.current, Path(version_dir.name), flush=False)
    except Exception as exc:
        staged.discard()
        raise unchanged(exc) from exc
    except BaseException:
        staged.discard()
        raise
    problems: list[str] = []  # after the switch: said, not raised (the run did publish)
    try:
        fsync_path(targets.current.parent)
    except OSError as exc:
        problems.append(f"the switch to {version_dir.name} may not be on disk yet, after a crash the previous "
                        f"version could be current again ({exc})")
    try:
        ensure_fixed_links(targets)
    except Exception as exc:
        problems.append(f"could not point {targets.published_db.name} and {targets.parquet.name} at "
                        f"{CURRENT_LINK}/ ({exc}); open {targets.current}/{DB_NAME} until a sync makes them")
    for problem in problems:
        log.warning("%s: published %s, but %s", targets.mode, version_dir.name, problem)
    prune_versions(targets, keep={version_dir.name, previous})
    return PublishResult(
        published_db_path=targets.published_db,
        parquet_dir=targets.parquet,
        parquet_version_dir=parquet_dir,
        row_counts=row_counts,
        seconds=time.perf_counter() - started,
        version_dir=version_dir,
        changed_tables=tuple(changed),
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class PreviousVersion:
    """The published version a new one can start from: its folder and its manifest's fingerprints."""

    version_dir: Path
    fingerprints: dict[str, str]
    row_counts: dict[str, int]
    views: str | None
    judged: Any = None  # the gate's verdicts on these tables, as the manifest holds them (integrity.Judged)
    # The DuckDB file's (size, mtime_ns) once the publish had written it: a file changed since
    # (edited by hand) no longer holds what the fingerprints and verdicts describe.
    db_stat: tuple[int, int] | None = None

    def db_file_unchanged(self) -> bool:
        """The version's DuckDB file is the one its publish wrote (False when the manifest predates the record)."""
        try:
            st = (self.version_dir / DB_NAME).stat()
        except OSError:
            return False
        return self.db_stat is not None and (st.st_size, st.st_mtime_ns) == self.db_stat


def table_fingerprints(con: duckdb.DuckDBPyConnection, names: Iterable[str] | None = None) -> dict[str, str]:
    """Per table: `<schema digest>:<rows>:<sum of row hashes>`; equal fingerprints, equal tables.
    A history table's adds `:<its latest instant>` (publish_history.latest_instant_sql: where the
    next publish's patch starts), a function of its rows, so equal tables still mean equal fingerprints.

    One statement for all tables (a query each paid DuckDB's fixed cost per statement ~30 times),
    their counts and sums put one under the other (UNION ALL: a scalar subquery per table in one
    row took a third longer). `names`: only these tables (all by default)."""
    specs = list(TABLES.values()) if names is None else [TABLES[name] for name in names]
    sums = " UNION ALL ".join(
        f"SELECT {literal(spec.name)}, count(*)::VARCHAR || ':' || coalesce(sum(hash(t)), 0)::VARCHAR"
        + (f" || ':' || coalesce({latest_instant_sql('t')}::VARCHAR, '')" if spec.kind == "history" else "")
        + f" FROM {ident(spec.name)} AS t"
        for spec in specs
    )
    counted = dict(con.execute(sums).fetchall())
    return {spec.name: f"{schema_digest(spec)}:{counted[spec.name]}" for spec in specs}


@functools.lru_cache(maxsize=1024)
def schema_digest(spec) -> str:
    return _digest([PARQUET_LAYOUT, create_table_sql(spec), *comment_sql(spec)])


def views_digest() -> str:
    """What the views, their column comments and the as-of macros are made of (SQL, comments, the tables' DDL)."""
    parts = [f"{v.name}\n{v.sql}\n{v.comment}\n{sorted(v.column_comments.items())}" for v in VIEWS]
    parts += [f"{m.name}({m.parameter})\n{m.sql}\n{m.comment}" for m in AS_OF_MACROS]
    return _digest(parts + [schema_digest(spec) for spec in TABLES.values()])


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def previous_version(targets: ModePaths) -> PreviousVersion | None:
    """The current version, to build the next one from: when its manifest is one this code wrote
    for this storage version and its DuckDB file is still the one that publish wrote.

    A file replaced or edited since (another size or modification time) no longer holds what the
    manifest's fingerprints say: a table kept from it, or a history patch started from the
    manifest's latest instant, would publish its rows instead of the work database's. The next
    version is then built whole."""
    try:
        version_dir = (targets.mode_dir / os.readlink(targets.current)).resolve()
    except OSError:
        return None
    version = recorded_version(version_dir)
    if version is not None and not version.db_file_unchanged():
        if version_dir not in _said_changed:
            _said_changed.add(version_dir)
            why = "its manifest does not record it" if version.db_stat is None else "its size or modification time changed"
            log.warning("%s: the published file %s may not be the one its publish wrote (%s); the next version "
                        "is built whole, not from it", targets.mode, version_dir / DB_NAME, why)
        return None
    return version


_said_changed: set[Path] = set()  # versions whose changed file was reported (once per process)


def recorded_version(version_dir: Path) -> PreviousVersion | None:
    """What a version folder's manifest records (tables, verdicts), if this code wrote it for this storage version."""
    try:
        manifest = json.loads((version_dir / FINGERPRINTS_NAME).read_text())
    except (OSError, ValueError):
        return None
    usable = (
        isinstance(manifest, dict)
        and manifest.get("format") == FINGERPRINTS_FORMAT
        and manifest.get("storage_version") == PUBLISHED_STORAGE_VERSION
        and manifest.get("duckdb") == duckdb.__version__
        and isinstance(manifest.get("tables"), dict)
        and (version_dir / DB_NAME).is_file()
    )
    if not usable:
        return None
    tables = manifest["tables"]
    return PreviousVersion(
        version_dir,
        {name: t.get("fingerprint") for name, t in tables.items() if isinstance(t, dict)},
        {name: t.get("rows") for name, t in tables.items() if isinstance(t, dict)},
        manifest.get("views"),
        manifest.get("judged"),
        _stat_of(manifest.get("db_file")),
    )


def _stat_of(recorded: Any) -> tuple[int, int] | None:
    if isinstance(recorded, dict) and isinstance(recorded.get("size"), int) and isinstance(recorded.get("mtime_ns"), int):
        return recorded["size"], recorded["mtime_ns"]
    return None


class UnusableCopy(Exception):
    """The copy of the current version's file would not attach: the new version is built whole.

    Found by the ATTACH the incremental publish makes anyway; opening the file beforehand to see
    whether it is a database cost a DuckDB instance of its own (~40 ms a publish)."""


def write_fingerprints(
    version_dir: Path, fingerprints: dict[str, str], row_counts: dict[str, int], judged: dict[str, Any] | None = None,
) -> None:
    manifest = {
        "format": FINGERPRINTS_FORMAT,
        "storage_version": PUBLISHED_STORAGE_VERSION,
        "duckdb": duckdb.__version__,
        "tables": {
            name: {"fingerprint": fingerprints[name], "rows": row_counts[name]} for name in fingerprints
        },
        "views": views_digest(),
    } | ({"judged": judged} if judged is not None else {}) | _db_stat(version_dir / DB_NAME)
    (version_dir / FINGERPRINTS_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _db_stat(db_file: Path) -> dict[str, Any]:
    """The written DuckDB file's size and mtime, so a reader can tell it was not changed since."""
    try:
        st = db_file.stat()
    except OSError:
        return {}
    return {"db_file": {"size": st.st_size, "mtime_ns": st.st_mtime_ns}}


def stage(targets: ModePaths, previous: PreviousVersion | None) -> StagedVersion:
    """The new version's folder, with the copy of the current DuckDB file started in the background."""
    try:
        return StagedVersion(targets, db_file_of(previous))
    except OSError as exc:  # the folder could not be made (a full or read-only disk)
        raise unchanged(exc) from exc


def staged_for(targets: ModePaths, previous: PreviousVersion | None, early: StagedVersion | None) -> StagedVersion:
    """The folder a publish builds in: `early` (staged as the run opened) if it copies `previous`,
    the version current now, else a new one (`current` may have been moved by hand meanwhile).
    Also starts removing the versions before the current one, which the switch would prune anyway;
    only a publish does that, so a run that fails before its publish leaves every version folder it
    found (a publish that is refused or fails once begun has removed those already)."""
    if early is not None and early.source != db_file_of(previous):
        log.warning("%s: the published version changed during the run; copying the current one again", targets.mode)
        early.discard()
        early = None
    staged = early if early is not None else stage(targets, previous)
    if previous is not None:
        keep = {previous.version_dir.name, staged.version_dir.name}
        staged.tidy(lambda: remove_versions(targets, keep=keep))
    return staged


def db_file_of(previous: PreviousVersion | None) -> Path | None:
    return previous.version_dir / DB_NAME if previous is not None else None


def unchanged(exc: BaseException) -> PublishError:
    """The error of a publish that stopped before its switch (out of memory: with what to raise)."""
    said = out_of_memory(exc) if isinstance(exc, duckdb.OutOfMemoryException) else exc
    return PublishError(f"publish failed before anything was replaced; the published copies are unchanged: {said}")


def build_database(
    con: duckdb.DuckDBPyConnection,
    staged: StagedVersion,
    version_dir: Path,
    fingerprints: dict[str, str],
    previous: PreviousVersion | None,
    ahead: dict[str, str] | None = None,
) -> tuple[dict[str, int], list[str]]:
    """The new version's DuckDB file and Parquet tree; returns row counts and the tables rewritten.

    From a copy of the previous file when there is one (only changed tables rebuilt), else from
    a copy of the empty database (publish_template.py). Parquet from the work database for the
    changed tables, hard links for the others. `ahead`: tables the copy holds already (publish_ahead.py:
    history tables patched into a previous version's copy, or any table copied whole into the empty
    database of a first publish), each at its fingerprint.
    """
    tmp_db = staged.db_file
    ahead = ahead or {}
    # Patched ahead and still exact: done, Parquet file included. Patched ahead but changed since
    # (or its file gone): the copy holds neither the previous version's rows nor the work table's,
    # so copied whole.
    ahead_dir = staged.version_dir / AHEAD_DIR
    ready = [name for name, fingerprint in ahead.items()
             if fingerprints.get(name) == fingerprint and (ahead_dir / f"{name}.parquet").is_file()]
    if ahead:
        log.debug("%s ahead of the publish: %s done; %s changed since, copied whole",
                  "history patched" if previous is not None else "tables copied", ", ".join(ready) or "none", ", ".join(n for n in ahead if n not in ready) or "none")
    if previous is not None:
        staged.copied()  # of previous's file (stage)
        changed = [name for name in TABLES if previous.fingerprints.get(name) != fingerprints[name] or name in ahead]
    else:  # every table, comment, view and macro in place, no rows (publish_template.py)
        if not ahead:  # else placed by the head start, holding the tables it copied (publish_ahead.py)
            place_empty_database(con, tmp_db)  # over one a head start placed, if its every batch was undone
        changed = list(TABLES)
    # Views bind by name when queried, so they survive their tables being rebuilt underneath.
    views_changed = previous is not None and previous.views != views_digest()
    try:
        con.execute(f"ATTACH {literal(str(tmp_db))} AS {ident(PUBLISH_CATALOG)} (STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})")
    except duckdb.Error as exc:
        if previous is None:
            raise
        raise UnusableCopy(f"the current version's {DB_NAME} is not a database DuckDB can open ({exc})") from exc
    try:
        if previous is None and (stale := [name for name in ahead if name not in ready]):
            # Copied ahead into the empty database, written again since: copied whole again below.
            con.execute(";\n".join(f"DELETE FROM {qualified(name, PUBLISH_CATALOG)}" for name in stale))
        # Three lanes at once, each on a connection of its own: the changed tables' Parquet,
        # written from the work database; the history tables' patches; the other tables' copies.
        # Statements on tables this size run on one DuckDB thread each, so one after the other
        # left a core idle. The Parquet holds the work tables' rows, which the file's tables hold
        # too once built: copied from them, or patched, and a patch is kept only when the
        # fingerprints (row count and sum of row hashes) prove the table equal to the work one.
        with ThreadPoolExecutor(2, thread_name_prefix="publish-lane") as lanes:
            one_lane = lanes_for(con) == 1
            if one_lane:
                # One DuckDB thread too: two threads' Parquet writes of the scorecards of 10,000 test
                # takers (~4 KB of raw JSON each) ran out of the memory limit in a first publish
                # ("failed to allocate data of size 15.4 MiB (119.1 MiB/122.0 MiB used)") when the
                # table's row groups fell one large, one small; one thread never did, and built that
                # database in 9.0-9.6 s against 11.9 s with two. Decided with the lanes, from one
                # reading of the size. The setting is the database's: the publish's next step is the
                # close, and a later publish of the run sets its threads again (RunWriter.publish).
                con.execute(f"SET threads = {ONE_LANE_THREADS}")
            start = run_now if one_lane else lanes.submit  # bench/publish_lanes.py compares
            parquet = start(on_own_cursor, con, write_parquet, version_dir, [n for n in changed if n not in ready])
            patching = start(on_own_cursor, con, patch_histories, [n for n in changed if n not in ahead], fingerprints, previous)
            others = [name for name in changed
                      if name not in ready and (TABLES[name].kind != "history" or previous is None or name in ahead)]
            row_counts = rebuild_tables(con, others, fingerprints, previous, drop_views=views_changed)
            patched = patching.result()
            # A history table whose patch was not proven exact (or was not tried: its schema
            # changed) is copied whole, as any changed table.
            row_counts |= rebuild_tables(
                con, [n for n in changed if n not in others and n not in patched and n not in ready], fingerprints, previous
            )
            row_counts |= patched
            row_counts |= {name: Fingerprint.parse(fingerprints[name]).rows for name in ready}
            if views_changed:  # once every table they read is as it will be published
                create_views(con)
            parquet.result()
        take_ahead_parquet(staged.version_dir, version_dir, ready)
        row_counts.update({name: previous.row_counts[name] for name in TABLES if name not in row_counts})
        link_parquet(previous, version_dir, [name for name in TABLES if name not in changed])
        con.execute(f"CHECKPOINT {ident(PUBLISH_CATALOG)}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {ident(PUBLISH_CATALOG)}")
    if Path(f"{tmp_db}.wal").exists():
        raise RuntimeError(f"publish left a WAL next to {tmp_db}; the copy is not self-contained")
    return {name: row_counts[name] for name in TABLES}, changed


def lanes_for(con: duckdb.DuckDBPyConnection) -> int:
    """How many lanes this publish runs: PUBLISH_LANES while the work database is small enough to
    share its memory limit (LANES_UP_TO_BYTES), else 1. Its WAL is counted only once the checkpoint
    beside the publish (checkpoint_beside.py) has written it into the file; DuckDB checkpoints it
    past 16 MB anyway (its default `checkpoint_threshold`), so at most that is missed."""
    return PUBLISH_LANES if shares_memory(con) else 1


def shares_memory(con: duckdb.DuckDBPyConnection) -> bool:
    """The work database is small enough (LANES_UP_TO_BYTES) for work beside other work to share its memory limit."""
    (used,) = con.execute(
        "SELECT used_blocks * block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    return used <= LANES_UP_TO_BYTES


def run_now(function, *args) -> Future:
    """`function(*args)` run here, as a finished future: the one-lane publish."""
    done: Future = Future()
    try:
        done.set_result(function(*args))
    except Exception as exc:
        done.set_exception(exc)
    return done


def rebuild_tables(
    con: duckdb.DuckDBPyConnection, names: list[str], fingerprints: dict[str, str],
    previous: PreviousVersion | None, *, drop_views: bool = False,
) -> dict[str, int]:
    """`names` copied whole into the new file (emptied, or dropped and created again, first; the
    views dropped too if asked, for the caller to create again); returns their row counts."""
    emptied = empty_same_schema_tables(con, names, fingerprints, previous)
    # From a previous file: the changed tables (and any that left the registry) are dropped and
    # created again; the empty database already holds every table as it is now.
    recreated = [name for name in names if name not in emptied] if previous is not None else []
    if previous is not None:
        drop_stale(con, recreated, views=drop_views)
    if recreated:
        ensure_schema(con, PUBLISH_CATALOG, [TABLES[name] for name in recreated])
    return copy_tables(con, names)


def on_own_cursor(con: duckdb.DuckDBPyConnection, step, *args):
    """A lane: `step(cursor, *args)` on a cursor of `con` (the work database), so it runs beside
    the caller's statements; set as the work connection is (a cursor starts from the defaults)."""
    with con.cursor() as cursor:
        cursor.execute("SET TimeZone = 'UTC'")
        return step(cursor, *args)


def place_empty_database(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """The empty published database at `target` (a copy of the one made for this code; else built
    there), in place of any file there (a head start's whose batches were all undone) and its WAL."""
    remove_quietly(Path(f"{target}.wal"))
    copy_empty_database(target, empty_database_key(), lambda path: build_empty_database(con, path), EMPTY_DATABASE_MADE_BY)


def empty_database_key() -> str:
    """What an empty published database is made of: every table's schema digest (the first part of
    its fingerprint), the views' digest, the DuckDB and storage versions."""
    schemas = ",".join(f"{name}={schema_digest(spec)}" for name, spec in TABLES.items())
    return f"{duckdb.__version__}|{PUBLISHED_STORAGE_VERSION}|{views_digest()}|{schemas}"


def build_empty_database(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Every table with its comments, the views and the as-of macros, no rows: what a full build starts from."""
    con.execute(f"ATTACH {literal(str(path))} AS {ident(PUBLISH_CATALOG)} (STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})")
    try:
        ensure_schema(con, PUBLISH_CATALOG)
        create_views(con)
        con.execute(f"CHECKPOINT {ident(PUBLISH_CATALOG)}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {ident(PUBLISH_CATALOG)}")


def patch_histories(
    con: duckdb.DuckDBPyConnection, changed: list[str], fingerprints: dict[str, str], previous: PreviousVersion | None
) -> dict[str, int]:
    """Changed history tables brought up to date in the copied file by the night's keys only
    (publish_history.py); returns their row counts. The others are rebuilt whole."""
    if previous is None:
        return {}
    names = [name for name in changed if TABLES[name].kind == "history"]
    # All in one transaction: one commit (a write and sync of the new file's WAL) rather than one
    # per table. Any patch not proven exact undoes them all; the proven ones are then applied again
    # one transaction each, as a single patch_history would (rare: a clock stepped back, a large night).
    con.begin()
    try:
        since = patch_starts(con, previous, names, PUBLISH_CATALOG)
        exact = {name: apply_patch(con, TABLES[name], PUBLISH_CATALOG, previous.fingerprints.get(name), fingerprints[name], since[name])
                 for name in names}
    except BaseException:
        con.rollback()
        raise
    if False in exact.values():
        con.rollback()
        retried = [name for name, proven in exact.items() if proven]
        exact = {name: patch_history(con, TABLES[name], PUBLISH_CATALOG, previous.fingerprints.get(name), fingerprints[name])
                 for name in retried}
    else:
        con.commit()
    return {name: Fingerprint.parse(fingerprints[name]).rows for name, proven in exact.items() if proven}


def patch_starts(con: duckdb.DuckDBPyConnection, previous: PreviousVersion, names: list[str], catalog: str) -> dict[str, datetime | None]:
    """Where each history table's patch starts: the latest instant its previous fingerprint
    records, read from `catalog`'s copy only for one that does not (a manifest written before it did)."""
    recorded = {name: recorded_latest(previous, name) for name in names}
    return recorded | latest_instants(con, [TABLES[name] for name, at in recorded.items() if at is None], catalog)


def recorded_latest(previous: PreviousVersion, name: str) -> datetime | None:
    """The latest instant the previous version's copy of history table `name` holds, as its fingerprint records it."""
    recorded = Fingerprint.parse(previous.fingerprints.get(name))
    return recorded.latest_instant() if recorded is not None else None


def empty_same_schema_tables(
    con: duckdb.DuckDBPyConnection, names: list[str], fingerprints: dict[str, str], previous: PreviousVersion | None
) -> list[str]:
    """Of the tables to copy whole, those the copied file holds with the same DDL and comments
    (same schema digest): emptied in place instead of dropped and created again, which would
    re-apply ~500 comments, a catalog change each (~0.1 s of every publish). Fully deleted row
    groups are dropped at the checkpoint, so the file does not grow by it."""
    if previous is None or not names:
        return []
    held = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [PUBLISH_CATALOG]
    ).fetchall()}
    emptied = []
    for name in names:
        before, now = Fingerprint.parse(previous.fingerprints.get(name)), Fingerprint.parse(fingerprints[name])
        if name in held and before is not None and now is not None and before.schema == now.schema:
            emptied.append(name)
    if emptied:
        con.execute(";\n".join(f"DELETE FROM {qualified(name, PUBLISH_CATALOG)}" for name in emptied))
    return emptied


def drop_stale(con: duckdb.DuckDBPyConnection, changed: list[str], *, views: bool) -> None:
    """In the copied file: drop the views when they are rebuilt, and every table that changed or left the registry."""
    objects = con.execute(
        "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = $db "
        "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE database_name = $db AND NOT internal",
        {"db": PUBLISH_CATALOG},
    ).fetchall()
    for name, kind in sorted(objects, key=lambda o: o[1] != "VIEW"):  # views first
        stale = views if kind == "VIEW" else (name in changed or name not in TABLES)
        if stale:
            con.execute(f"DROP {kind} IF EXISTS {qualified(name, PUBLISH_CATALOG)}")
    if views:  # the as-of macros are rebuilt with the views (one for a table no longer versioned goes)
        macros = con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE database_name = $db AND function_type = 'table_macro'",
            {"db": PUBLISH_CATALOG},
        ).fetchall()
        for (name,) in macros:
            con.execute(f"DROP MACRO TABLE IF EXISTS {qualified(name, PUBLISH_CATALOG)}")


def copy_tables(con: duckdb.DuckDBPyConnection, names: list[str], catalog: str = PUBLISH_CATALOG) -> dict[str, int]:
    """Each table's rows into its empty table of the new file (attached as `catalog`); returns the
    rows each received (what the INSERT reports: no count(*) of its own, a statement per table less)."""
    return {
        name: con.execute(f"INSERT INTO {qualified(name, catalog)} BY NAME SELECT * FROM {ident(name)}").fetchone()[0]
        for name in names
    }


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the analyst views and the as-of table macros; a view column without its own comment
    borrows the comment of the first table column with the same name, so every column explains itself.

    One transaction, one round trip per view: each statement committing alone cost a WAL write
    apiece (about 150 comments)."""
    table_comments: dict[str, str] = {}
    for spec in TABLES.values():
        for column in spec.all_columns:
            table_comments.setdefault(column.name, column.comment)
    con.begin()
    try:
        for macro in AS_OF_MACROS:
            target = qualified(macro.name, PUBLISH_CATALOG)
            con.execute(f"CREATE OR REPLACE MACRO {target}({macro.parameter}) AS TABLE {macro.sql};\n"
                        f"COMMENT ON MACRO TABLE {target} IS {literal(macro.comment)}")
        for view in VIEWS:
            target = qualified(view.name, PUBLISH_CATALOG)
            con.execute(f"CREATE OR REPLACE VIEW {target} AS {view.sql}")
            columns = con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
                [PUBLISH_CATALOG, view.name],
            ).fetchall()
            statements = [f"COMMENT ON VIEW {target} IS {literal(view.comment)}"]
            for (column,) in columns:
                comment = view.column_comments.get(column) or table_comments.get(column)
                if comment:
                    statements.append(f"COMMENT ON COLUMN {target}.{ident(column)} IS {literal(comment)}")
            con.execute(";\n".join(statements))
    except BaseException:
        con.rollback()
        raise
    con.commit()


def write_parquet(con: duckdb.DuckDBPyConnection, version_dir: Path, names: list[str]) -> None:
    """One directory per table, one file each (an empty table still gets a file with its schema)."""
    for name in names:
        table_dir = version_dir / name
        table_dir.mkdir(parents=True, exist_ok=True)
        write_parquet_file(con, name, table_dir / PARQUET_FILE)


def write_parquet_file(con: duckdb.DuckDBPyConnection, name: str, target: Path) -> None:
    """Work table `name` as one Parquet file at `target`."""
    # The spec's columns, order and types (the published table's): a work table made by an
    # older spec may hold them in another order, or a column of another type.
    columns = ", ".join(f"CAST({ident(c.name)} AS {c.type}) AS {ident(c.name)}" for c in TABLES[name].all_columns)
    source = f"(SELECT {columns} FROM {ident(name)})"
    described = kv_metadata_option(described_schema(con, source, TABLES[name]))
    con.execute(
        f"COPY (SELECT * FROM {source}) TO {literal(str(target))} "
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {PARQUET_ZSTD_LEVEL}, "
        f"ROW_GROUP_SIZE_BYTES {literal(PARQUET_ROW_GROUP_BYTES)}, {described})"
    )


def take_ahead_parquet(staged_dir: Path, parquet_dir: Path, ready: list[str]) -> None:
    """The Parquet files written ahead of the publish for the `ready` tables, moved into the tree;
    the folder they were written in (with any of a table changed since) removed."""
    ahead_dir = staged_dir / AHEAD_DIR
    for name in ready:
        table_dir = parquet_dir / name
        table_dir.mkdir(parents=True, exist_ok=True)
        os.replace(ahead_dir / f"{name}.parquet", table_dir / PARQUET_FILE)
    shutil.rmtree(ahead_dir, ignore_errors=True)


def link_parquet(previous: PreviousVersion | None, version_dir: Path, names: list[str]) -> None:
    """Unchanged tables: hard links to the previous version's files (same bytes, no copy)."""
    for name in names:
        assert previous is not None
        table_dir = version_dir / name
        table_dir.mkdir(parents=True, exist_ok=True)
        for source in (previous.version_dir / PARQUET_NAME / name).iterdir():
            os.link(source, table_dir / source.name)


def ensure_fixed_links(targets: ModePaths) -> None:
    """`jofi.duckdb` and `parquet` point through `current`; replace whatever else is there."""
    for path, name in ((targets.published_db, DB_NAME), (targets.parquet, PARQUET_NAME)):
        wanted = f"{CURRENT_LINK}/{name}"
        if not (path.is_symlink() and os.readlink(path) == wanted):
            swap_symlink(path, Path(wanted))


def swap_symlink(link: Path, target: Path, *, flush: bool = True) -> str | None:
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
    if flush:  # else the caller flushes the folder (publish: a failure then is no longer "unchanged")
        fsync_path(link.parent)
    return previous


def prune_versions(targets: ModePaths, keep: set[str | None]) -> None:
    """Drop versions except the current and the previous one (a reader may be mid-scan)."""
    remove_versions(targets, keep)


def remove_versions(targets: ModePaths, keep: set[str | None]) -> None:
    """Every version folder but those in `keep` (also run by stage's thread, before the switch)."""
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


def fsync_tree(root: Path, carried: set[Path] = frozenset()) -> None:
    """Every directory and every file under `root`, except the files of folders in `carried`
    (hard links to files a previous publish flushed), whose folders are still flushed."""
    for directory, _, files in os.walk(root):
        if Path(directory) not in carried:
            for name in files:
                fsync_path(Path(directory) / name)
        fsync_path(Path(directory))
