"""Read-only access to the published warehouses: `sql`, `describe` and `status`.

Always reads the published copy read-only (through warehouse.PublishedWarehouse), so it never
blocks (or is blocked by) a running sync.
"""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path

import duckdb

from jofi_pipeline import entities, settings
from jofi_pipeline.settings import MODES, Mode
from jofi_pipeline.warehouse import ModePaths, PublishedReader, PublishedWarehouse, WarehouseError
from jofi_pipeline.warehouse.readonly import refusal_of
from jofi_pipeline.warehouse.remote import remote_status_lines


class QueryError(Exception):
    """A query could not run; the message says why and what to do."""


def _open_published(mode: Mode, data_dir: Path | None = None) -> PublishedReader:
    try:
        return PublishedWarehouse(mode, data_dir).open()
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None


def run_query(query: str, mode: Mode, output: str = "table", data_dir: Path | None = None) -> str:
    """A person's query, read-only: anything but a read is refused with one line (warehouse/readonly.py)."""
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
        except WarehouseError as exc:  # refused by the read-only door
            raise QueryError(str(exc)) from None
        except duckdb.Error as exc:
            raise QueryError(refusal_of(exc) or f"query failed: {str(exc).splitlines()[0]}") from None


def describe_text(name: str | None, mode: Mode, data_dir: Path | None = None, width: int | None = None) -> str:
    """The tables and views with their comments, or one of them with every column's type and comment.

    DuckDB keeps the documentation as comments, which `DESCRIBE` does not show (they are in
    duckdb_columns()); this is where an analyst reads them.
    """
    width = max(width or shutil.get_terminal_size().columns, 60)
    with _open_published(mode, data_dir) as reader:
        if name is None:
            objects = reader.objects()
            lines = [textwrap.fill(
                f"Tables and views of the {mode} warehouse; `{settings.CLI} describe NAME --mode {mode}` shows the columns.", width
            )]
            pad = max(len(o.name) for o in objects) + 4
            for kind in ("table", "view"):
                lines.append(f"{kind}s:")
                lines += [_hanging(f"  {o.name}", pad, o.comment, width) for o in objects if o.kind == kind]
            return "\n".join(lines)
        doc = reader.describe(name)
        if doc is None:
            known = ", ".join(o.name for o in reader.objects())
            raise QueryError(f"no table or view {name!r} in the {mode} warehouse; there are: {known}")
    lines = [textwrap.fill(f"{doc.name} ({doc.kind}, {mode}): {doc.comment}", width, subsequent_indent="  "), ""]
    types = [_SHORT_TYPES.get(c.type, c.type) for c in doc.columns]
    name_w = max(len("column"), *(len(c.name) for c in doc.columns)) + 2
    type_w = max(len("type"), *(len(t) for t in types)) + 2
    lines.append(f"{'column':<{name_w}}{'type':<{type_w}}comment")
    lines += [_hanging(f"{c.name:<{name_w}}{t}", name_w + type_w, c.comment, width) for c, t in zip(doc.columns, types)]
    return "\n".join(lines)


_SHORT_TYPES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}  # the spelling the DDL uses


def _hanging(head: str, indent: int, text: str, width: int) -> str:
    """`head` padded to `indent`, then `text` wrapped to `width` under itself (on the next line if head is longer)."""
    body = textwrap.wrap(text, max(width - indent, 20)) or [""]
    first = f"{head:<{indent}}" if len(head) < indent else head + "\n" + " " * indent
    return "\n".join([first + body[0], *(" " * indent + line for line in body[1:])]).rstrip()


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
                    lines.append(f"       -> {settings.CLI} import-ids --kind {kind} FILE --mode {mode}")
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
