"""Small value types the store hands in and out (no behaviour, no storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class MergeCounts:
    """What one upsert did to one table.

    inserted: new keys. updated: known keys whose content changed (for entity tables judged on
    the merged raw JSON, ignoring `mode`/`object`). unchanged: known keys only re-seen (just
    `_last_synced_at` bumped). removed: child rows dropped because their parent now lists fewer
    children. skipped: objects/items without a usable key (not stored).
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.removed


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


@dataclass(frozen=True)
class SyncRunRecord:
    """One sync run as it lands in `sync_runs` (+ `sync_coverage`). Never holds request headers."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None = None
    rows_inserted: dict[str, int] = field(default_factory=dict)
    rows_updated: dict[str, int] = field(default_factory=dict)
    requests_total: int = 0
    requests_by_route: dict[str, int] = field(default_factory=dict)
    coverage: tuple[CoverageRecord, ...] = ()


@dataclass(frozen=True)
class PublishResult:
    """Where the published copies are and what they hold."""

    published_db_path: Path
    parquet_dir: Path            # the stable symlink analysts use
    parquet_version_dir: Path    # the directory it points at now
    row_counts: dict[str, int]
    seconds: float
