"""Read-only access to the published warehouses: `sql`, `describe` and `status`.

Always reads the published copy read-only (through warehouse.PublishedWarehouse), so it never
blocks (or is blocked by) a running sync.
"""

from __future__ import annotations

import shutil
import sqlite3
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from jofi_pipeline import entities, settings
from jofi_pipeline.query_formats import render
from jofi_pipeline.settings import MODES, Mode
from jofi_pipeline.warehouse import ModePaths, PublishedReader, PublishedWarehouse, WarehouseError
from jofi_pipeline.warehouse.attempts import AttemptLog
from jofi_pipeline.warehouse.diagnose import is_damaged
from jofi_pipeline.warehouse.readonly import refusal_of
from jofi_pipeline.warehouse.remote import remote_status_lines
from jofi_pipeline.warehouse.tables import QUARANTINE_AFTER_RUNS
from jofi_pipeline.webhooks.inbox import InboxError


class QueryError(Exception):
    """A query could not run; the message says why and what to do."""


def _open_published(mode: Mode, data_dir: Path | None = None) -> PublishedReader:
    try:
        return PublishedWarehouse(mode, data_dir).open()
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None


def run_query(
    query: str, mode: Mode, output: str = "table", data_dir: Path | None = None, *, wide: bool = False,
    max_rows: int | None = None,
) -> str:
    """A person's query, read-only: anything but a read is refused with one line (warehouse/readonly.py).

    The result as text (query_formats.py), or QueryError with DuckDB's whole message.
    """
    published = PublishedWarehouse(mode, data_dir)
    with _open_published(mode, data_dir) as reader:
        try:
            rel = reader.sql(query)
            if rel is None:
                return ""
            return render(rel, output, wide=wide, max_rows=max_rows)
        except WarehouseError as exc:  # refused by the read-only door
            raise QueryError(str(exc)) from None
        except duckdb.Error as exc:
            if is_damaged(exc):
                raise QueryError(str(published.open_failure(exc))) from None
            refused = refusal_of(exc)
            if refused:
                raise QueryError(refused) from None
            # Whole: DuckDB's "Did you mean ...?", the candidate bindings and the caret under the
            # offending spot are on the lines after the first.
            raise QueryError(f"query failed: {str(exc).strip()}") from None


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
    """Per mode: the last attempt, the last published run, rows, coverage, inbox and remote copy."""
    return status_report(data_dir).text


@dataclass
class StatusReport:
    """What `status` prints; `problems` are files it could not read (each also shown as an `error:` line)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def section(self, produce: Callable[[], list[str]]) -> None:
        """Add `produce()`'s lines, or one `error:` line naming the file it could not read."""
        try:
            self.lines.extend(produce())
        except (WarehouseError, InboxError, duckdb.Error, OSError, sqlite3.Error) as exc:
            problem = " ".join(str(exc).split()) or type(exc).__name__
            self.problems.append(problem)
            self.lines.append(f"   error: {problem}")


def status_report(data_dir: Path | None = None) -> StatusReport:
    report = StatusReport()
    root = ModePaths.of(MODES[0], data_dir).data_dir
    if root.exists() and not root.is_dir():
        report.section(lambda: _not_a_folder(root))
        return report
    for mode in MODES:
        published = PublishedWarehouse(mode, data_dir)
        report.lines.append(f"== {mode} ({published.path})")
        report.section(lambda: _attempt_lines(published.paths))
        report.section(lambda: _published_lines(published))
        report.section(lambda: _inbox_lines(mode, data_dir))
        report.section(lambda: remote_status_lines(published.paths))
    return report


def _not_a_folder(root: Path) -> list[str]:
    raise WarehouseError(
        f"the warehouse root {root} is a file, not a folder: point {settings.ENV_DATA_DIR} (or --data-dir) at the "
        "folder that holds live/ and test/"
    )


def _attempt_lines(paths: ModePaths) -> list[str]:
    """The newest sync attempt, whatever became of it (a failed or refused one is in no published copy)."""
    last = AttemptLog(paths.attempts).last(paths.mode)
    if last is None:
        return ["   last attempt: none recorded"]
    line = f"   last attempt: {last.status.upper() if last.status in ('failed', 'refused') else last.status} " \
           f"{last.finished_at:%Y-%m-%d %H:%M:%S %Z} (run {last.run_id}, {last.seconds:.0f}s)"
    return [line + (f": {last.reason}" if last.reason else "")]


def _published_lines(published: PublishedWarehouse) -> list[str]:
    mode = published.mode
    if not published.exists():
        return ["   not synced yet"]
    lines: list[str] = []
    try:
        with published.open() as reader:
            last = reader.last_run()
            if last:
                lines.append(
                    f"   last published run {last.run_id}: {last.status}, {last.started_at:%Y-%m-%d %H:%M:%S%z} "
                    f"-> {last.finished_at}" + (f": {last.error}" if last.error else "")
                )
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
            lines.extend(_remembered_lines(reader.remembered(), mode))
    except duckdb.Error as exc:  # opened, but a page would not read: a damaged copy
        raise published.open_failure(exc) from None
    return lines


def _remembered_lines(rows: list, mode: Mode, shown: int = 5) -> list[str]:
    """Quarantined records, each with its reason; not-found ones counted (none is asked every night)."""
    lines: list[str] = []
    quarantined = [r for r in rows if r.quarantined]
    if quarantined:
        lines.append(
            f"   quarantined ({len(quarantined)}; every attempt failed in {QUARANTINE_AFTER_RUNS}+ runs in a row; "
            f"asked again when their inputs change, or: {settings.CLI} sync --mode {mode} --full):"
        )
        lines.extend(f"     {r.entity} {r.record_key}: failed {r.failed_runs} runs, last {r.last_at:%Y-%m-%d}: {r.error}"
                     for r in quarantined[:shown])
        if len(quarantined) > shown:
            lines.append(f"     ... and {len(quarantined) - shown} more (SELECT * FROM fetch_outcomes)")
    not_found: dict[str, int] = {}
    for r in rows:
        if r.outcome == "not_found":
            not_found[r.entity] = not_found.get(r.entity, 0) + 1
    if not_found:
        counts = ", ".join(f"{e}={n}" for e, n in sorted(not_found.items()))
        lines.append(f"   not found at JOFI, never held (asked again when what refers to them changes): {counts}")
    return lines


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
