"""`import-ids`: register record ids the customer already holds so the next sync fetches them.

For records that fell out of JOFI's capped lists before any sync saw them (and before webhooks
were on). Accepts a CSV with an id column (`id`, or e.g. `test_taker_id`) or one id per line.
Ids are validated by kind (integers for invitations and test takers, strings for profiles) and
appended to the mode's inbox; ids the published warehouse already holds are not queued again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from jofi_pipeline.webhooks.inbox import Inbox, inbox_path

KINDS = {"invitations": "invitations", "test-takers": "test_takers", "profiles": "career_navigation_profiles"}
ID_COLUMNS = {
    "invitations": ("id", "invitation_id"),
    "test_takers": ("id", "test_taker_id"),
    "career_navigation_profiles": ("id", "career_navigation_profile_id", "profile_id"),
}
MAX_PROFILE_ID_LENGTH = 64


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
    column = next((header.index(c) for c in ID_COLUMNS[entity] if c in header), None)
    if column is not None:
        return [(n, row[column] if column < len(row) else "") for n, row in enumerate(rows[1:], start=2) if any(row)]
    if len(header) > 1 and not any(_valid(entity, h) for h in header):
        raise ValueError(f"no id column: name one of {', '.join(ID_COLUMNS[entity])} in the CSV header")
    return [(n, row[0] if row else "") for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]


def _valid(entity: str, raw: str) -> str | None:
    value = raw.strip()
    if entity == "career_navigation_profiles":
        ok = 0 < len(value) <= MAX_PROFILE_ID_LENGTH and value.isprintable() and " " not in value and not value.isdigit()
        return value if ok else None
    return str(int(value)) if value.isdigit() and int(value) > 0 else None


def held_ids(data_dir: Path, mode: str, entity: str) -> set[str]:
    """Ids the published warehouse already holds (empty before the first sync)."""
    published = Path(data_dir) / mode / "jofi.duckdb"
    if not published.exists():
        return set()
    with duckdb.connect(str(published), read_only=True) as con:
        return {str(r[0]) for r in con.execute(f'SELECT id FROM "{entity}"').fetchall()}


def import_ids(text: str, kind: str, mode: str, data_dir: Path) -> ImportReport:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    entity = KINDS[kind]
    report = ImportReport(entity, inbox=inbox_path(data_dir, mode))
    seen: set[str] = set()
    fresh: list[str] = []
    held = held_ids(data_dir, mode, entity)
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
