"""Reading a mode's published database: every query of it lives here.

The Dagster assets and checks, `status`, `sql` and `import-ids` all read the published copy, the
one analysts see, and always read-only, so none of them ever blocks (or is blocked by) a sync.
They ask this module; none of them opens the file or writes SQL against it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.settings import Mode
from jofi_pipeline.warehouse import fetch_outcomes, integrity, readonly
from jofi_pipeline.warehouse.diagnose import open_failure
from jofi_pipeline.warehouse.fetch_outcomes import Remembered
from jofi_pipeline.warehouse.errors import WarehouseError
from jofi_pipeline.warehouse.paths import ModePaths
from jofi_pipeline.warehouse.publish import PreviousVersion as RecordedVersion
from jofi_pipeline.warehouse.publish import recorded_version
from jofi_pipeline.warehouse.records import CoverageHistory
from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS

COVERAGE_RUNS = 5
FUNNEL_STAGES = ("invited", "accepted", "all assessments completed", "career navigation profile")
# Runs whose data was published: a failed run's row is in the work database only.
PUBLISHED_STATUSES = ("succeeded", "partial")


class NotPublishedError(WarehouseError):
    """No sync has published this mode yet."""


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class ObjectDoc:
    """A table or view of the published database and its documentation (DuckDB's comments)."""

    name: str
    kind: str  # 'table' or 'view'
    comment: str
    columns: tuple[ColumnDoc, ...] = ()


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class PublishedWarehouse:
    """Where one mode's published database is; `open()` reads it, through the locked read-only door."""

    def __init__(self, mode: Mode | str, data_dir: Path | str | None = None) -> None:
        self.paths = ModePaths.of(mode, data_dir)
        self.mode: Mode = self.paths.mode

    @property
    def path(self) -> Path:
        return self.paths.published_db

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> PublishedReader:
        """A read-only reader (close it, or use `with`); a clear WarehouseError when there is none."""
        if not self.exists():
            raise NotPublishedError(
                f"no published {self.mode} warehouse at {self.path}: run `{settings.CLI} sync --mode {self.mode}` "
                f"first (or set {settings.ENV_DATA_DIR})"
            )
        try:
            # The version folder the fixed link points to now, so the file read and its manifest are
            # of the same version even if a publish switches `current` meanwhile.
            db_file = self.path.resolve()
            return PublishedReader(readonly.connect(db_file), version_dir=db_file.parent)
        except (duckdb.Error, OSError) as exc:
            raise self.open_failure(exc) from None

    def open_failure(self, exc: BaseException) -> WarehouseError:
        """A held, damaged or unreadable published copy, with what to do (it is only a copy)."""
        return open_failure(
            self.path, exc, what=f"the published {self.mode} database",
            locked=f"Open it read-only (`duckdb -readonly {self.path}`), or close that session.",
            damaged=(
                f"It is only a copy of the working database: run `{settings.CLI} sync --mode {self.mode}` to "
                "publish a fresh one"
            ),
        )

    def held_ids(self, entity: str) -> set[str]:
        """Ids of `entity` the published warehouse holds, as text; empty before the first publish."""
        if not self.exists():
            return set()
        with self.open() as reader:
            try:
                return reader.held_ids(entity)
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot read {entity} ids from {self.path}: {str(exc).splitlines()[0]}") from None


class PublishedReader:
    """One read-only connection to a published database and the questions the project asks it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version_dir: Path | None = None) -> None:
        """`version_dir`: the folder of the file `con` reads, whose manifest the publish wrote."""
        self._con = con
        self._columns: dict[str, list[tuple[str, str, str | None]]] | None = None
        self._computed: set[str] = set()  # views held in temporary tables (compute_once)
        self._version_dir = version_dir
        self._recorded: RecordedVersion | None | bool = False  # False: not read yet

    def recorded(self) -> RecordedVersion | None:
        """What the publish recorded with this file (row counts, the gate's verdicts), if the file
        is still the one it wrote: None for a file changed since (by hand), copied without its
        manifest, or published by older code. Read once."""
        if self._recorded is False:
            version = recorded_version(self._version_dir) if self._version_dir is not None else None
            self._recorded = version if version is not None and version.db_file_unchanged() else None
        return self._recorded  # type: ignore[return-value]

    def __enter__(self) -> PublishedReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def sql(self, query: str) -> duckdb.DuckDBPyRelation | None:
        """An analyst's own query: refused (RefusedStatement, one line) unless every statement only
        reads; the connection is locked read-only besides (readonly.py), so nothing can write."""
        readonly.screen(query)
        try:
            return self._con.sql(query)
        except duckdb.Error as exc:
            reason = readonly.refusal_of(exc)
            if reason:
                raise readonly.RefusedStatement(reason) from None
            raise

    # -- what is there --------------------------------------------------------------------------

    def row_counts(self) -> dict[str, int]:
        """Rows per table in the file, by table name: as the publish counted them when it wrote this
        file (its manifest), else counted now in one statement."""
        recorded = self.recorded()
        if recorded is not None and set(recorded.row_counts) == set(TABLES) and all(
            isinstance(n, int) for n in recorded.row_counts.values()
        ):
            return dict(recorded.row_counts)
        return self.counted_rows()

    def counted_rows(self) -> dict[str, int]:
        """Rows per table in the file, counted now (one statement for all tables)."""
        tables = [t for (t,) in self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY 1"
        ).fetchall()]
        if not tables:
            return {}
        counts = self._con.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {ident(t)})" for t in tables)).fetchone()
        return dict(zip(tables, counts, strict=True))

    def count(self, name: str) -> int:
        """Rows of one table or view."""
        return self._count(f"SELECT count(*) FROM {ident(_relation(name))}")

    def columns(self, name: str) -> list[tuple[str, str, str | None]]:
        """(column, type, comment) of a table or view, in order: what `COMMENT ON` left in the file.

        Read for every table and view at the first call, in one query (a sync's asset metadata
        asks for all ~35; the file under an open connection does not change)."""
        relation = _relation(name)
        if self._columns is None:
            rows = self._con.execute(
                "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
                "WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index"
            ).fetchall()
            self._columns = {}
            for table, column, sql_type, comment in rows:
                self._columns.setdefault(table, []).append((column, sql_type, comment))
        return list(self._columns.get(relation, []))

    def compute_once(self, view: str) -> None:
        """Compute `view` once for every later read through this reader: its rows in a temporary
        table of the same name, which DuckDB reads instead (it looks in the temporary catalog
        first; nothing is written to the file). A view is a query, computed again by each read:
        a sync reads the funnel three times (its preview and count, then the two queries of its
        charts). The file under an open connection never changes, so the copy stays exact."""
        relation = _relation(view)
        if relation in self._computed:
            return
        self._con.execute(f"CREATE TEMPORARY TABLE {ident(relation)} AS SELECT * FROM {ident(relation)}")
        self._computed.add(relation)

    def preview(self, name: str, columns: list[str], limit: int = 5) -> list[tuple]:
        """The first `limit` rows of `columns` (ordered by them, so the preview is stable)."""
        if not columns:
            return []
        cols = ", ".join(ident(c) for c in columns)
        return self._con.execute(
            f"SELECT {cols} FROM {ident(_relation(name))} ORDER BY ALL LIMIT {int(limit)}"
        ).fetchall()

    def count_and_preview(self, name: str, columns: list[str], limit: int = 5) -> tuple[int, list[tuple]]:
        """`count(name)` and `preview(name, columns, limit)` from one query: a view is computed once,
        not once for its count and again for its preview."""
        if not columns:
            return self.count(name), []
        cols = ", ".join(ident(c) for c in columns)
        rows = self._con.execute(
            f"SELECT {cols}, count(*) OVER () FROM {ident(_relation(name))} ORDER BY ALL LIMIT {int(limit)}"
        ).fetchall()  # ORDER BY ALL also takes the count, the same on every row: the columns decide the order
        return (rows[0][-1] if rows else 0), [row[:-1] for row in rows]

    def objects(self) -> list[ObjectDoc]:
        """Every table and view analysts see, with its comment (columns not included)."""
        rows = self._con.execute(
            """
            SELECT table_name, 'table', coalesce(comment, '') FROM duckdb_tables()
            WHERE database_name = current_database() AND schema_name = 'main'
            UNION ALL
            SELECT view_name, 'view', coalesce(comment, '') FROM duckdb_views()
            WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
            ORDER BY 2, 1
            """
        ).fetchall()
        return [ObjectDoc(*row) for row in rows]

    def describe(self, name: str) -> ObjectDoc | None:
        """A table or view with its columns' types and comments (what `DESCRIBE` leaves out)."""
        found = next((o for o in self.objects() if o.name == name), None)
        if found is None:
            return None
        columns = self.columns(found.name)
        return ObjectDoc(found.name, found.kind, found.comment, tuple(ColumnDoc(n, t, c or "") for n, t, c in columns))

    def held_ids(self, entity: str) -> set[str]:
        return {str(r[0]) for r in self._con.execute(f"SELECT id FROM {ident(_table(entity))}").fetchall()}

    def last_run(self) -> RunSummary | None:
        """The newest run in the published copy (the run that published it)."""
        row = self._con.execute(
            "SELECT run_id, status, started_at, finished_at, error FROM sync_runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        return RunSummary(*row) if row else None

    def last_published_run(self) -> RunSummary | None:
        """The newest run that published data (succeeded or partial)."""
        row = self._con.execute(
            "SELECT run_id, status, started_at, finished_at, error FROM sync_runs WHERE status IN "
            f"({', '.join('?' for _ in PUBLISHED_STATUSES)}) ORDER BY finished_at DESC LIMIT 1",
            list(PUBLISHED_STATUSES),
        ).fetchone()
        return RunSummary(*row) if row else None

    def remembered(self) -> list[Remembered]:
        """Records the sync could not fetch by id and does not ask for every night (fetch_outcomes)."""
        try:
            return fetch_outcomes.remembered(self._con)
        except duckdb.CatalogException:  # a copy published before the table existed
            return []

    def coverage(self, runs: int = COVERAGE_RUNS) -> dict[str, CoverageHistory]:
        """Per list read: API total vs rows held over the last `runs` runs, newest first."""
        rows = self._con.execute(
            """
            SELECT entity, list((api_total_count, rows_held, run_id) ORDER BY read_at DESC)[1:?]
            FROM sync_coverage GROUP BY entity ORDER BY entity
            """,
            [runs],
        ).fetchall()
        return {
            entity: CoverageHistory(entity, tuple((p[0], p[1] or 0, p[2]) for p in (points or []) if p is not None))
            for entity, points in rows
        }

    # -- what the charts draw (report/, the asset pages) --------------------------------------------

    def funnel_totals(self) -> list[tuple[str, int]]:
        """(stage, invitations) over every week: invited, accepted, all assessments completed, with profile."""
        row = self._con.execute(
            "SELECT coalesce(sum(invited), 0), coalesce(sum(accepted), 0), "
            "coalesce(sum(all_assessments_completed), 0), coalesce(sum(with_profile), 0) FROM invitation_funnel"
        ).fetchone()
        return list(zip(FUNNEL_STAGES, (int(v) for v in row)))

    def funnel_by_week(self, weeks: int = 12) -> list[tuple]:
        """(week_start, invited, accepted, completed, with_profile) for the newest `weeks` weeks, oldest first."""
        return self._con.execute(
            "SELECT week_start, sum(invited)::BIGINT, sum(accepted)::BIGINT, sum(all_assessments_completed)::BIGINT, "
            "sum(with_profile)::BIGINT FROM invitation_funnel GROUP BY week_start ORDER BY week_start DESC LIMIT ?",
            [weeks],
        ).fetchall()[::-1]

    def coverage_over_time(self, entities: tuple[str, ...], runs: int = 30) -> list[tuple]:
        """(run_id, read_at, entity, api_total_count, rows_held) of the newest `runs` runs, oldest first."""
        marks = ", ".join("?" for _ in entities)
        return self._con.execute(
            f"""
            WITH recent AS (SELECT run_id, max(read_at) AS last_read FROM sync_coverage GROUP BY run_id ORDER BY last_read DESC LIMIT ?)
            SELECT c.run_id, r.last_read, c.entity, c.api_total_count, c.rows_held
            FROM sync_coverage c JOIN recent r USING (run_id)
            WHERE c.entity IN ({marks}) ORDER BY r.last_read, c.entity
            """,
            [runs, *entities],
        ).fetchall()

    def score_histograms(self, bins: int = 10) -> dict[str, list[int]]:
        """Per top-level score (not facets): how many test takers scored in each of `bins` bins of 0-10."""
        rows = self._con.execute(
            """
            WITH scores AS (
                SELECT DISTINCT test_taker_id, score_display_name AS score, test_taker_score AS value
                FROM scores_long WHERE NOT is_facet AND test_taker_score IS NOT NULL)
            SELECT score, least(CAST(floor(value * ? / 10) AS INTEGER), ? - 1) AS bin, count(*)
            FROM scores GROUP BY ALL ORDER BY score, bin
            """,
            [bins, bins],
        ).fetchall()
        out: dict[str, list[int]] = {}
        for score, index, count in rows:
            out.setdefault(score, [0] * bins)[max(index, 0)] += count
        return out

    # -- what the asset checks verify ------------------------------------------------------------

    def findings(self, mode: str, account_id: int | None = None) -> list[integrity.Finding]:
        """Every integrity rule (integrity.py) judged on the published copy."""
        return integrity.findings(self._con, mode, account_id)

    def verdicts(self, mode: str, account_id: int | None = None) -> list[integrity.Finding]:
        """Every integrity rule's verdict on this file: the publish gate's, which the manifest keeps
        with the fingerprints of exactly these tables, while the file is unchanged since. The gate's
        own reuse decides (`integrity.findings` given those fingerprints): a rule judged by other
        rules, for another mode or account, or not judged then is asked of the file now."""
        recorded = self.recorded()
        if recorded is None or not recorded.judged:
            return self.findings(mode, account_id)
        judged = integrity.Judged.from_json(recorded.judged, recorded.fingerprints)
        return integrity.findings(self._con, mode, account_id, recorded.fingerprints, judged)

    def history_breaks(self, table: str) -> int:
        """Keys of a `<table>_history` table whose versions do not form one clean chain.

        A chain is clean when, ordered by `_valid_from`: each version ends where the next begins
        (after a delete marker the record may come back later), only the last may be current and
        it is current exactly when `_valid_to` is null, a delete marker is a closed zero-length
        version, and no two neighbouring versions hold the same content.
        """
        return self._count(_history_breaks_sql(table))

    def every_history_breaks(self) -> dict[str, int]:
        """`history_breaks` of every history table, in one statement."""
        tables = [spec.name for spec in TABLES.values() if spec.kind == "history"]
        counts = self._con.execute("SELECT " + ", ".join(f"({_history_breaks_sql(t)})" for t in tables)).fetchone()
        return dict(zip(tables, counts, strict=True))

    def _count(self, sql: str) -> int:
        return self._con.execute(sql).fetchone()[0]


def _history_breaks_sql(table: str) -> str:
    spec = TABLES[table]
    key = ", ".join(ident(c) for c in spec.key[:-1])
    return f"""
            WITH v AS (
                SELECT {key}, _valid_from, _valid_to, _is_current, _change, _row_hash,
                       lead(_valid_from) OVER w AS next_from, lead(_change) OVER w AS next_change,
                       lead(_row_hash) OVER w AS next_hash
                FROM {ident(table)} WINDOW w AS (PARTITION BY {key} ORDER BY _valid_from, _valid_to NULLS LAST))
            SELECT count(DISTINCT ({key})) FROM v WHERE
                _is_current IS DISTINCT FROM (_valid_to IS NULL)
                OR (_change = 'delete' AND (_valid_to IS DISTINCT FROM _valid_from))
                OR (_change <> 'delete' AND next_from IS NOT NULL AND _valid_to IS DISTINCT FROM next_from)
                OR (_change <> 'delete' AND next_from IS NULL AND NOT _is_current)
                OR (_change <> 'delete' AND next_change <> 'delete' AND _row_hash = next_hash)
            """


def _relation(name: str) -> str:
    """A table or view name of the specs (never SQL from outside)."""
    if name not in TABLES and name not in {v.name for v in VIEWS}:
        raise WarehouseError(f"unknown table or view {name!r}")
    return name


def _table(entity: str) -> str:
    if entity not in TABLES:
        raise WarehouseError(f"unknown table {entity!r}; known: {', '.join(TABLES)}")
    return entity
