"""The outcome of a sync run: what a CLI summary, Dagster metadata and sync_runs all show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from jofi_pipeline.warehouse.records import SchemaDrift


class SyncFailed(Exception):
    """A sync that stopped; `reason` is one line a person can act on (never contains the key)."""

    def __init__(self, reason: str, *, run_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.run_id = run_id


@dataclass
class Coverage:
    """A capped list: how many records the API says exist vs how many the warehouse holds."""

    entity: str
    api_total_count: int | None
    rows_held: int
    has_more: bool
    capped: bool

    @property
    def missing(self) -> int:
        if self.api_total_count is None:
            return 0
        return max(self.api_total_count - self.rows_held, 0)


@dataclass
class SyncReport:
    run_id: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    error: str | None = None
    inserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unchanged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: dict[str, int] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    rows_held: dict[str, int] = field(default_factory=dict)
    fetch_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    drift: dict[str, SchemaDrift] = field(default_factory=dict)  # per table: shapes that differ from the docs

    @property
    def requests_total(self) -> int:
        return sum(self.requests.values())

    @property
    def seconds(self) -> float:
        if self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def add_counts(self, counts: dict) -> None:
        """Fold the store's per-table merge counts into the run totals."""
        for table, c in counts.items():
            self.inserted[table] += c.inserted
            self.updated[table] += c.updated
            self.unchanged[table] += c.unchanged
            if getattr(c, "drift", None):
                self.drift.setdefault(table, SchemaDrift()).add(c.drift)

    def drift_summary(self) -> str:
        """One line naming each drifting table, or '' when every object matched the docs."""
        return " | ".join(f"{table}: {d.describe()}" for table, d in sorted(self.drift.items()) if d)
