"""The outcome of a sync run: what a CLI summary, Dagster metadata and sync_runs all show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from jofi_pipeline.warehouse.records import SchemaDrift, coverage_gap
from jofi_pipeline.warehouse.remote import RemoteOutcome


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
        return coverage_gap(self.api_total_count, self.rows_held)


MAX_FAILURE_SAMPLES = 3


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def one_line(exc: BaseException) -> str:
    """An exception as one line for reports and logs: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
    requests: dict[str, int] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    # Per-record GETs: how many were planned, how many failed after retries, and a few examples.
    fetch_planned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fetch_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fetch_failure_samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    drift: dict[str, SchemaDrift] = field(default_factory=dict)  # per table: shapes that differ from the docs
    remote: RemoteOutcome | None = None  # the upload to JOFI_PUBLISH_URL after the local publish

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
            if getattr(c, "drift", None):
                self.drift.setdefault(table, SchemaDrift()).add(c.drift)

    def add_fetch_failure(self, entity: str, key: object, error: BaseException) -> None:
        self.fetch_failures[entity] += 1
        samples = self.fetch_failure_samples[entity]
        if len(samples) < MAX_FAILURE_SAMPLES:
            status = getattr(error, "status", None)
            samples.append(f"{key!r} ({status or type(error).__name__})")

    def fetch_failures_text(self) -> str:
        """e.g. '3 of 800 scorecards (e.g. (12, 'JOFI-295-AS') (500), ...)'; '' when none failed."""
        return "; ".join(
            f"{n} of {self.fetch_planned.get(entity, n)} {entity} (e.g. {', '.join(self.fetch_failure_samples[entity])})"
            for entity, n in self.fetch_failures.items()
        )

    def drift_summary(self) -> str:
        """One line naming each drifting table, or '' when every object matched the docs."""
        return " | ".join(f"{table}: {d.describe()}" for table, d in sorted(self.drift.items()) if d)
