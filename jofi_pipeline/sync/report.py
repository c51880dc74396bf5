"""The outcome of a sync run: what a CLI summary, Dagster metadata and sync_runs all show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from jofi_pipeline import entities, settings
from jofi_pipeline.warehouse.records import SchemaDrift, coverage_gap
from jofi_pipeline.warehouse.remote import RemoteOutcome


class SyncFailed(Exception):
    """A sync that stopped; `reason` is one line a person can act on (never contains the key)."""

    def __init__(self, reason: str, *, run_id: str | None = None, findings: tuple | list = ()):
        super().__init__(reason)
        self.reason = reason
        self.run_id = run_id
        # A refused publish: every integrity rule as judged on the work database (warehouse/integrity.py).
        self.findings = list(findings)


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


def capped_window_note(mode: str, gaps: list[tuple[str, int, int]]) -> str:
    """One line for a run whose capped lists hold less than the API reports: (entity, held, API total).

    Names the three ways to hold the rest, so the moment the gap shows is the moment it is explained.
    """
    gaps = sorted(gaps)
    held = ", ".join(f"{entity} {rows} of {total}" for entity, rows, total in gaps)
    kinds = "|".join(dict.fromkeys(
        entities.ENTITIES[e].import_kind for e, _, _ in gaps if e in entities.ENTITIES and entities.ENTITIES[e].import_kind
    ))
    cli = settings.CLI
    webhooks = f"webhooks ({cli} webhooks)" if mode == "live" else f"webhooks (live mode only: {cli} webhooks)"
    return (
        f"held {held}: JOFI's lists show only their latest 30-50 records. To hold the rest: {webhooks}, "
        f"the window watcher ({cli} watch --mode {mode}) or the ids you hold "
        f"({cli} import-ids --kind {kinds or 'KIND'} FILE --mode {mode}); cursor paging is followed as soon as JOFI offers it."
    )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class SyncReport:
    run_id: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    error: str | None = None
    # Per table, each row once (the writer's tally, warehouse/tally.py): what sync_runs records.
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    # Per-record GETs: how many were planned, how many failed after retries, and a few examples.
    fetch_planned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fetch_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fetch_failure_samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Per entity, the record keys failed so far and their sample text: each counts once, and a later
    # ask in the same run that brings one in takes it back (fetch_recovered).
    failed_keys: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    # Records that failed once more and are quarantined: they no longer count against the run.
    quarantined: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    drift: dict[str, SchemaDrift] = field(default_factory=dict)  # per table: shapes that differ from the docs
    remote: RemoteOutcome | None = None  # the upload to JOFI_PUBLISH_URL after the local publish
    publish_seconds: float | None = None  # the local publish, after finished_at

    @property
    def gaps(self) -> list[Coverage]:
        """Capped lists whose API total is larger than what the warehouse holds."""
        return [c for c in self.coverage if c.missing and (c.capped or c.has_more)]

    @property
    def requests_total(self) -> int:
        return sum(self.requests.values())

    @property
    def seconds(self) -> float:
        """Fetch and merge: from the start to the run's row in sync_runs (publishing comes after)."""
        if self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def add_counts(self, counts: dict) -> None:
        """Fold one write's schema drift into the run's (rows are counted by the writer's tally)."""
        for table, c in counts.items():
            if getattr(c, "drift", None):
                self.drift.setdefault(table, SchemaDrift()).add(c.drift)

    def add_fetch_failure(self, entity: str, key: object, error: BaseException, record_key: str | None = None) -> None:
        """One record that failed after retries (`record_key`: as fetch_outcomes keys it), once per run."""
        failed = self.failed_keys[entity]
        known_as = record_key if record_key is not None else repr(key)
        if known_as in failed:
            return
        status = getattr(error, "status", None)
        failed[known_as] = f"{key!r} ({status or type(error).__name__})"
        self.fetch_failures[entity] += 1
        samples = self.fetch_failure_samples[entity]
        if len(samples) < MAX_FAILURE_SAMPLES:
            samples.append(failed[known_as])

    def fetch_recovered(self, entity: str, record_keys: list[str]) -> None:
        """Records that failed earlier in this run and were then fetched: no longer failures."""
        failed = self.failed_keys.get(entity, {})
        for known_as in record_keys:
            text = failed.pop(known_as, None)
            if text is None:
                continue
            self.fetch_failures[entity] -= 1
            samples = self.fetch_failure_samples[entity]
            if text in samples:
                samples.remove(text)
            samples.extend([t for t in failed.values() if t not in samples][: MAX_FAILURE_SAMPLES - len(samples)])
            if not self.fetch_failures[entity]:
                del self.fetch_failures[entity], self.fetch_failure_samples[entity]

    def add_quarantined(self, entity: str, key: object, error: BaseException) -> None:
        status = getattr(error, "status", None)
        self.quarantined[entity].append(f"{key!r} ({status or type(error).__name__})")

    def fetch_failures_text(self) -> str:
        """e.g. '3 of 800 scorecards (e.g. (12, 'JOFI-295-AS') (500), ...)'; '' when none failed."""
        return "; ".join(
            f"{n} of {self.fetch_planned.get(entity, n)} {entity} (e.g. {', '.join(self.fetch_failure_samples[entity])})"
            for entity, n in self.fetch_failures.items()
        )

    def drift_summary(self) -> str:
        """One line naming each drifting table, or '' when every object matched the docs."""
        return " | ".join(f"{table}: {d.describe()}" for table, d in sorted(self.drift.items()) if d)
