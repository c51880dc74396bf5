"""One sync run of one mode: API -> warehouse. Knows the client and the store, not Dagster."""

from jofi_pipeline.sync.options import SyncOptions
from jofi_pipeline.sync.report import SyncFailed, SyncReport
from jofi_pipeline.sync.runner import run_sync

__all__ = ["SyncOptions", "SyncReport", "SyncFailed", "run_sync"]
