"""Read-only access to the published warehouses: `sql` and `status`.

Always reads the published copy read-only (through warehouse.PublishedWarehouse), so it never
blocks (or is blocked by) a running sync.
"""

from __future__ import annotations

import io
from pathlib import Path

import duckdb

from jofi_pipeline import entities
from jofi_pipeline.settings import MODES, Mode
from jofi_pipeline.warehouse import ModePaths, PublishedReader, PublishedWarehouse, WarehouseError
from jofi_pipeline.warehouse.remote import remote_status_lines


class QueryError(Exception):
    """A query could not run; the message says why and what to do."""


def _open_published(mode: Mode, data_dir: Path | None = None) -> PublishedReader:
    try:
        return PublishedWarehouse(mode, data_dir).open()
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None


def run_query(query: str, mode: Mode, output: str = "table", data_dir: Path | None = None) -> str:
    with _open_published(mode, data_dir) as reader:
        try:
            rel = reader.sql(query)
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


def status_text(data_dir: Path | None = None) -> str:
    lines: list[str] = []
    for mode in MODES:
        published = PublishedWarehouse(mode, data_dir)
        lines.append(f"== {mode} ({published.path})")
        if not published.exists():
            lines.append("   not synced yet")
            lines.extend(_inbox_lines(mode, data_dir))
            continue
        try:
            reader = published.open()
        except WarehouseError as exc:
            lines.append(f"   {exc}")
            continue
        with reader:
            last = reader.last_run()
            if last:
                # Read from the published copy: a run that failed since is not in it (its row is
                # in the work database and appears here with the next successful run).
                lines.append(
                    f"   last published run {last.run_id}: {last.status}, {last.started_at:%Y-%m-%d %H:%M:%S%z} "
                    f"-> {last.finished_at}"
                )
                if last.error:
                    lines.append(f"   error: {last.error}")
            lines.append("   rows: " + ", ".join(f"{t}={n}" for t, n in reader.row_counts().items()))
            lines.append("   coverage (API total_count vs rows held, last runs):")
            for entity, history in reader.coverage().items():
                trend = " <- ".join(f"{gap:+d}" for gap in history.gaps)
                lines.append(
                    f"     {entity:<28} api {history.api_total_count!s:>6}  held {history.rows_held:>6}  "
                    f"missing {history.missing:>5}   gap by run: {trend}"
                )
                kind = entities.ENTITIES[entity].import_kind if entity in entities.ENTITIES else None
                if history.missing and kind:
                    lines.append(f"       -> jofi-pipeline import-ids --kind {kind} FILE --mode {mode}")
        lines.extend(_inbox_lines(mode, data_dir))
        lines.extend(remote_status_lines(ModePaths.of(mode, data_dir)))
    return "\n".join(lines)


def _inbox_lines(mode: Mode, data_dir: Path | None) -> list[str]:
    """Ids from webhooks / import-ids / the watcher that the next sync will fetch by id, and the
    watcher's last poll and the records it saw fall out of a window between two polls."""
    from jofi_pipeline.webhooks import watch_log
    from jofi_pipeline.webhooks.inbox import Inbox

    path = ModePaths.of(mode, data_dir).inbox
    if not path.exists():
        return []
    with Inbox.open(path, create=False) as inbox:
        counts, events = inbox.counts(), inbox.event_count()
    pending = ", ".join(f"{e}={n}" for e, n in sorted(counts.items())) or "none"
    watcher = watch_log.summary(path)
    return [f"   inbox ({events} webhook events received): ids pending for the next sync: {pending}",
            *(watcher.lines() if watcher else [])]
