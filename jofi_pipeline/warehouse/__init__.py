"""Warehouse room: DuckDB + Parquet storage per mode. Knows storage, not HTTP, not Dagster."""

from jofi_pipeline.warehouse.errors import (
    ModeMismatchError,
    PublishError,
    UnknownEntityError,
    WarehouseBusyError,
    WarehouseError,
)
from jofi_pipeline.warehouse.records import (
    CoverageRecord,
    FetchRecord,
    MergeCounts,
    PublishResult,
    SyncRunRecord,
    UpsertCounts,
)
from jofi_pipeline.warehouse.store import RunWriter, WarehouseStore
from jofi_pipeline.warehouse.tables import ENTITIES, TABLES

__all__ = [
    "ENTITIES",
    "TABLES",
    "CoverageRecord",
    "FetchRecord",
    "MergeCounts",
    "ModeMismatchError",
    "PublishError",
    "PublishResult",
    "RunWriter",
    "SyncRunRecord",
    "UnknownEntityError",
    "UpsertCounts",
    "WarehouseBusyError",
    "WarehouseError",
    "WarehouseStore",
]
