"""Read-only access to the published warehouses: `sql` and `status`.

Always opens the published copy read-only, so it never blocks (or is blocked by) a running sync.
"""

from __future__ import annotations

import io
from pathlib import Path

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.settings import MODES, Mode


class QueryError(Exception):
    """A query could not run; the message says why and what to do."""


def published_path(mode: Mode, data_dir: Path | None = None) -> Path:
    return (data_dir or settings.data_dir()) / mode / "jofi.duckdb"


def connect_published(mode: Mode, data_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    path = published_path(mode, data_dir)
    if not path.exists():
        raise QueryError(
            f"no published {mode} warehouse at {path}: run `jofi-pipeline sync --mode {mode}` first "
            f"(or set {settings.ENV_DATA_DIR})"
        )
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise QueryError(f"cannot open {path}: {exc}") from None


def run_query(query: str, mode: Mode, output: str = "table", data_dir: Path | None = None) -> str:
    con = connect_published(mode, data_dir)
    try:
        rel = con.sql(query)
        if rel is None:
            return ""
        if output == "table":
            return str(rel)
        frame = rel.df()
        if output == "csv":
            buf = io.StringIO()
            frame.to_csv(buf, index=False)
            return buf.getvalue().rstrip("\n")
        return frame.to_json(orient="records", date_format="iso", force_ascii=False)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def status_text(data_dir: Path | None = None) -> str:
    lines: list[str] = []
    for mode in MODES:
        path = published_path(mode, data_dir)
        lines.append(f"== {mode} ({path})")
        if not path.exists():
            lines.append("   not synced yet")
            lines.extend(_inbox_lines(mode, data_dir))
            continue
        with duckdb.connect(str(path), read_only=True) as con:
            last = con.execute(
                "SELECT run_id, status, started_at, finished_at, error FROM sync_runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
            if last:
                run_id, status, started, finished, error = last
                # Read from the published copy: a run that failed since is not in it (its row is
                # in the work database and appears here with the next successful run).
                lines.append(f"   last published run {run_id}: {status}, {started:%Y-%m-%d %H:%M:%S%z} -> {finished}")
                if error:
                    lines.append(f"   error: {error}")
            counts = con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name='main' ORDER BY 1"
            ).fetchall()
            lines.append("   rows: " + ", ".join(f"{t}={_count(con, t)}" for (t,) in counts))
            lines.append("   coverage (API total_count vs rows held, last runs):")
            rows = con.execute(
                """
                SELECT entity, list(api_total_count ORDER BY read_at DESC)[1:5], list(rows_held ORDER BY read_at DESC)[1:5]
                FROM sync_coverage GROUP BY entity ORDER BY entity
                """
            ).fetchall()
            for entity, totals, held in rows:
                total, now_held = (totals or [None])[0], (held or [0])[0]
                missing = max((total or 0) - now_held, 0)
                trend = " <- ".join(f"{(t or 0) - h:+d}" for t, h in zip(totals, held))
                lines.append(
                    f"     {entity:<28} api {total!s:>6}  held {now_held:>6}  missing {missing:>5}   gap by run: {trend}"
                )
                if missing and entity in _IMPORT_KIND:
                    lines.append(f"       -> jofi-pipeline import-ids --kind {_IMPORT_KIND[entity]} FILE --mode {mode}")
        lines.extend(_inbox_lines(mode, data_dir))
    return "\n".join(lines)


_IMPORT_KIND = {"invitations": "invitations", "test_takers": "test-takers", "career_navigation_profiles": "profiles"}


def _inbox_lines(mode: Mode, data_dir: Path | None) -> list[str]:
    """Ids from webhooks / import-ids / the watcher that the next sync will fetch by id, and the
    watcher's last poll and the records it saw fall out of a window between two polls."""
    from jofi_pipeline.webhooks import watch_log
    from jofi_pipeline.webhooks.inbox import Inbox, inbox_path

    path = inbox_path(data_dir or settings.data_dir(), mode)
    if not path.exists():
        return []
    with Inbox.open(path, create=False) as inbox:
        counts, events = inbox.counts(), inbox.event_count()
    pending = ", ".join(f"{e}={n}" for e, n in sorted(counts.items())) or "none"
    watcher = watch_log.summary(path)
    return [f"   inbox ({events} webhook events received): ids pending for the next sync: {pending}",
            *(watcher.lines() if watcher else [])]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

