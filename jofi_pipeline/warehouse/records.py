"""Small value types the store hands in and out (no behaviour, no storage)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jofi_pipeline.warehouse.remote import RemoteOutcome


@dataclass
class MergeCounts:
    """What one upsert did to one table.

    inserted: new keys. updated: known keys whose content changed (for entity tables judged on
    the merged raw JSON, ignoring `mode`/`object`). unchanged: known keys only re-seen (the row is
    left as it is, `_last_synced_at` included). removed: child rows dropped because their parent now lists fewer
    children. skipped: objects/items without a usable key (not stored).
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    drift: SchemaDrift = field(default_factory=lambda: SchemaDrift())

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.removed


@dataclass
class SchemaDrift:
    """How objects differed from the shape the table spec documents: field -> objects affected.

    The raw JSON always keeps what arrived; this only makes the difference visible in the run.
    unknown: top-level fields the spec does not know. missing: documented fields absent.
    uncoercible: present values of the wrong type (stored as null in the typed column).
    """

    unknown: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    uncoercible: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.unknown or self.missing or self.uncoercible)

    def add(self, other: SchemaDrift) -> None:
        for mine, theirs in ((self.unknown, other.unknown), (self.missing, other.missing), (self.uncoercible, other.uncoercible)):
            for name, n in theirs.items():
                mine[name] = mine.get(name, 0) + n

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {k: dict(sorted(v.items())) for k, v in (("unknown", self.unknown), ("missing", self.missing), ("uncoercible", self.uncoercible)) if v}

    def describe(self) -> str:
        """One line, e.g. `unknown loyalty_tier x20; missing first_name x20; uncoercible email x20`."""
        return "; ".join(f"{kind} " + ", ".join(f"{n} x{c}" for n, c in names.items()) for kind, names in self.to_dict().items())


# upsert() returns one MergeCounts per table it touched: the entity table and its child tables.
UpsertCounts = dict[str, MergeCounts]


@dataclass(frozen=True)
class CoverageRecord:
    """How much of one capped list the warehouse holds after a run."""

    list_route: str          # e.g. "GET /test-takers"
    entity: str              # table the list fills, e.g. "test_takers"
    api_total_count: int | None
    rows_held: int | None
    has_more: bool | None
    capped: bool | None
    at: datetime | None = None


def coverage_gap(api_total_count: int | None, rows_held: int | None) -> int:
    """Records the API reports that the warehouse does not hold (0 when the API gave no total).

    The one place this arithmetic lives: the sync report, `status` and the coverage check use it.
    """
    return max((api_total_count or 0) - (rows_held or 0), 0)


@dataclass(frozen=True)
class CoverageHistory:
    """One list's coverage over the last runs, newest first: (api_total_count, rows_held, run_id)."""

    entity: str
    runs: tuple[tuple[int | None, int, str], ...]

    @property
    def api_total_count(self) -> int | None:
        return self.runs[0][0] if self.runs else None

    @property
    def rows_held(self) -> int:
        return self.runs[0][1] if self.runs else 0

    @property
    def run_id(self) -> str | None:
        return self.runs[0][2] if self.runs else None

    @property
    def missing(self) -> int:
        return self.gaps[0] if self.runs else 0

    @property
    def gaps(self) -> list[int]:
        """The gap of each run, newest first."""
        return [coverage_gap(total, held) for total, held, _ in self.runs]

    @property
    def trend(self) -> str:
        """'growing', 'shrinking' or 'steady': the newest gap against the one before."""
        gaps = self.gaps
        if len(gaps) < 2 or gaps[0] == gaps[1]:
            return "steady"
        return "growing" if gaps[0] > gaps[1] else "shrinking"


@dataclass(frozen=True)
class SyncRunRecord:
    """One sync run as it lands in `sync_runs` (+ `sync_coverage`). Never holds request headers."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None = None
    # None: the writer's own tally of the run (warehouse/tally.py), which is what a sync records.
    rows_inserted: dict[str, int] | None = None
    rows_updated: dict[str, int] | None = None
    requests_total: int = 0
    requests_by_route: dict[str, int] = field(default_factory=dict)
    coverage: tuple[CoverageRecord, ...] = ()
    drift: dict[str, SchemaDrift] = field(default_factory=dict)  # per table; empty when shapes matched


@dataclass(frozen=True)
class PublishResult:
    """Where the published copies are and what they hold."""

    published_db_path: Path
    parquet_dir: Path            # the stable symlink analysts use
    parquet_version_dir: Path    # the directory it points at now
    row_counts: dict[str, int]
    seconds: float
    version_dir: Path | None = None  # published.<v>/: what a remote copy uploads
    remote: RemoteOutcome | None = None  # the upload to JOFI_PUBLISH_URL, when one is configured
    changed_tables: tuple[str, ...] = ()  # tables this publish rewrote (the others were carried over)
    # What failed after the switch (it happened: the new version is the current one), each a line.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One derived object a run asked the API for, and the inputs it asked for (a `fetch_state` row).

    kind: 'scorecard' or 'job_fit_report'; score_profile_short_name is None for job-fit reports.
    outcome: 'fetched' or 'not_found'. The fields between `kind` and `outcome` are what a fetch
    plan row carries (PLAN_COLUMNS), named like the columns they fill.
    """

    kind: str
    test_taker_id: int
    score_profile_short_name: str | None
    completions_hash: str | None
    career_navigation_profile_id: str | None
    reason: str
    outcome: str
    fetched_at: datetime


# The columns of a derived object's fetch plan row, in order: the object's key, then its inputs and
# why it is wanted. Declared once, by FetchRecord: the plan queries select exactly these.
PLAN_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(FetchRecord) if f.name not in ("kind", "outcome", "fetched_at")
)
