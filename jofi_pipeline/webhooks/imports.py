"""`import-ids`: register record ids the customer already holds so the next sync fetches them.

For records that fell out of JOFI's capped lists before any sync saw them (and before webhooks
were on). Accepts a CSV with an id column (`id`, or e.g. `test_taker_id`) or one id per line.
Kinds, id columns and id rules are the entity registry's (entities.py); ids are appended to the
mode's inbox, and ids the published warehouse already holds are not queued again.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from jofi_pipeline import entities
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, identity
from jofi_pipeline.warehouse.identity import IdentityError
from jofi_pipeline.webhooks.inbox import Inbox


@dataclass
class ImportReport:
    entity: str
    new: int = 0
    known: int = 0  # already queued, already held, or repeated in the file
    invalid: int = 0
    invalid_samples: list[str] = field(default_factory=list)
    inbox: Path | None = None

    def summary(self) -> str:
        text = f"{self.entity}: {self.new} new, {self.known} known, {self.invalid} invalid"
        if self.invalid_samples:
            text += " (e.g. " + "; ".join(self.invalid_samples) + ")"
        if self.invalid:  # say why, once: the rule the invalid lines break
            text += f"; each id must be {entities.entity(self.entity).id_rule}"
        return text


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Unreadable(str):
    """A line that could not be read as a value at all; its text says why (shown as is)."""


NOT_UTF8 = Unreadable("not UTF-8 text")
NOT_CSV = Unreadable("not a CSV row (e.g. a field longer than the csv module allows)")


def _lines(data: bytes | str) -> list[tuple[int, str]]:
    """(line number, text) per line as an editor counts them; NOT_UTF8 for a line that is not UTF-8.

    Decoded line by line, so one line in another encoding is one invalid line, not a failed import.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    data = data.removeprefix(codecs.BOM_UTF8)
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(_LINE_BREAK.split(data.decode("latin-1")), start=1):
        try:
            out.append((number, raw.encode("latin-1").decode("utf-8")))
        except UnicodeDecodeError:
            out.append((number, NOT_UTF8))
    while out and out[-1][1] == "":
        out.pop()
    return out


def _fields(line: str) -> list[str] | Unreadable:
    """One line's CSV fields, or NOT_CSV (e.g. a field past the csv module's limit)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return NOT_CSV


def _cell_values(data: bytes | str, entity: str) -> list[tuple[int, str]]:
    """(line number, raw value) pairs: from the id column of a CSV with a header, else the first column.

    Each line is its own row (a stray quote never swallows the lines after it); a line that could
    not be read at all (not UTF-8, not CSV) is an `Unreadable` value: one invalid line.
    """
    rows: list[tuple[int, list[str] | Unreadable]] = []
    for n, text in _lines(data):
        row = text if isinstance(text, Unreadable) else _fields(text)
        if isinstance(row, Unreadable) or any(cell.strip() for cell in row):
            rows.append((n, row))
    if not rows:
        return []
    id_columns = entities.entity(entity).import_id_columns
    first = rows[0][1]
    header = [] if isinstance(first, Unreadable) else [h.strip().lower() for h in first]
    column = next((header.index(c) for c in id_columns if c in header), None)
    if column is not None:
        return [(n, _cell(row, column)) for n, row in rows[1:]]
    if len(header) > 1 and not any(_valid(entity, h) for h in header):
        raise ValueError(f"no id column: name one of {', '.join(id_columns)} in the CSV header")
    return [(n, _cell(row, 0)) for n, row in rows]


def _cell(row: list[str] | Unreadable, column: int) -> str:
    if isinstance(row, Unreadable):
        return row
    return row[column] if column < len(row) else ""


def _valid(entity: str, raw: str) -> str | None:
    """The id as the inbox stores it (text), or None when it breaks the registry's rule."""
    if isinstance(raw, Unreadable):
        return None
    try:
        return str(entities.parse_id(entity, raw))
    except entities.InvalidIdError:
        return None


def import_ids(data: bytes | str, kind: str, mode: str, data_dir: Path) -> ImportReport:
    """Queue the valid ids of `data` (a file's bytes, or text); every other line is counted invalid.

    ValueError (one line) for a file with no id column, an unknown kind, or a mode folder that holds
    another mode's data (warehouse/identity.py): then nothing is queued.
    """
    entity = entities.entity_of_import_kind(kind).name
    paths = ModePaths(data_dir, mode)
    try:
        identity.guard_folder(paths)
    except IdentityError as exc:
        raise ValueError(str(exc)) from None
    report = ImportReport(entity, inbox=paths.inbox)
    seen: set[str] = set()
    fresh: list[str] = []
    held = PublishedWarehouse(mode, data_dir).held_ids(entity)
    for line, raw in _cell_values(data, entity):
        value = _valid(entity, raw)
        if value is None:
            report.invalid += 1
            if len(report.invalid_samples) < 5:
                shown = str.__str__(raw) if isinstance(raw, Unreadable) else repr(raw.strip()[:40])
                report.invalid_samples.append(f"line {line}: {shown}")
        elif value in seen or value in held:
            report.known += 1
        else:
            seen.add(value)
            fresh.append(value)
    if fresh:
        with Inbox.open(report.inbox) as inbox:
            new, queued = inbox.add_imported(entity, fresh)
        report.new, report.known = new, report.known + queued
    return report
