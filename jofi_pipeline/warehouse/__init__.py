"""Warehouse room: DuckDB + Parquet storage per mode. Knows storage, not HTTP, not Dagster."""

from jofi_pipeline.warehouse.errors import (
    ModeMismatchError,
    PublishError,
    UnknownEntityError,
    WarehouseBusyError,
    WarehouseError,
)
from jofi_pipeline.warehouse.paths import ModePaths
from jofi_pipeline.warehouse.published import NotPublishedError, PublishedReader, PublishedWarehouse
from jofi_pipeline.warehouse.records import (
    CoverageHistory,
    CoverageRecord,
    FetchRecord,
    MergeCounts,
    PublishResult,
    SyncRunRecord,
    UpsertCounts,
    coverage_gap,
)
from jofi_pipeline.warehouse.store import RunWriter, WarehouseStore
from jofi_pipeline.warehouse.tables import ENTITY_TABLES, TABLES

__all__ = [
    "ENTITY_TABLES",
    "TABLES",
    "CoverageHistory",
    "CoverageRecord",
    "FetchRecord",
    "MergeCounts",
    "ModeMismatchError",
    "ModePaths",
    "NotPublishedError",
    "PublishError",
    "PublishResult",
    "PublishedReader",
    "PublishedWarehouse",
    "RunWriter",
    "SyncRunRecord",
    "UnknownEntityError",
    "UpsertCounts",
    "WarehouseBusyError",
    "WarehouseError",
    "WarehouseStore",
    "coverage_gap",
]
