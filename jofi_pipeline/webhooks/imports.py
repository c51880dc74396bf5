"""`import-ids`: register record ids the customer already holds so the next sync fetches them.

For records that fell out of JOFI's capped lists before any sync saw them (and before webhooks
were on). Accepts a CSV with an id column (`id`, or e.g. `test_taker_id`) or one id per line.
Kinds, id columns and id rules are the entity registry's (entities.py); ids are appended to the
mode's inbox, and ids the published warehouse already holds are not queued again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from jofi_pipeline import entities
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse
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
        return text


def _cell_values(text: str, entity: str) -> list[tuple[int, str]]:
    """(line number, raw value) pairs: from the id column of a CSV with a header, else the first column."""
    lines = text.splitlines()
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    id_columns = entities.entity(entity).import_id_columns
    column = next((header.index(c) for c in id_columns if c in header), None)
    if column is not None:
        return [(n, row[column] if column < len(row) else "") for n, row in enumerate(rows[1:], start=2) if any(row)]
    if len(header) > 1 and not any(_valid(entity, h) for h in header):
        raise ValueError(f"no id column: name one of {', '.join(id_columns)} in the CSV header")
    return [(n, row[0] if row else "") for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]


def _valid(entity: str, raw: str) -> str | None:
    """The id as the inbox stores it (text), or None when it breaks the registry's rule."""
    try:
        return str(entities.parse_id(entity, raw))
    except entities.InvalidIdError:
        return None


def import_ids(text: str, kind: str, mode: str, data_dir: Path) -> ImportReport:
    entity = entities.entity_of_import_kind(kind).name
    report = ImportReport(entity, inbox=ModePaths(data_dir, mode).inbox)
    seen: set[str] = set()
    fresh: list[str] = []
    held = PublishedWarehouse(mode, data_dir).held_ids(entity)
    for line, raw in _cell_values(text, entity):
        value = _valid(entity, raw)
        if value is None:
            report.invalid += 1
            if len(report.invalid_samples) < 5:
                report.invalid_samples.append(f"line {line}: {raw.strip()[:40]!r}")
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
