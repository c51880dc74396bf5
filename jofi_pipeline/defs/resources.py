"""Run-time settings for a sync, as one Dagster resource that builds what a sync is handed.

The API keys are deliberately not resource fields: a field's value can end up in run config and
Dagster's event log. The client reads the key from its env var (settings.KEY_ENV_VAR) when it is
built, for the one mode a run syncs, so an unset test key never breaks a live run and no key
reaches Dagster. The CLI's `sync` runs the same job, so it builds its client here too.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_REQUESTS_PER_SECOND
from jofi_pipeline.settings import Mode
from jofi_pipeline.sync import SyncOptions
from jofi_pipeline.sync.options import DEFAULT_BATCH_SIZE
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.remote import RemotePublisher


class JofiSyncResource(dg.ConfigurableResource):
    """Where to read from and write to; empty values fall back to the JOFI_* env vars."""

    base_url: str = ""
    data_dir: str = ""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    batch_size: int = DEFAULT_BATCH_SIZE
    # A run that finds another sync of its mode writing waits this long for it (then fails clearly).
    writer_wait_seconds: float = 3600.0
    # s3://bucket/prefix: also upload each published version there (default: env JOFI_PUBLISH_URL).
    publish_url: str = ""

    def client(self, mode: Mode) -> JofiClient:
        """The mode's client, its key from the environment (ConfigError, fatal, before any request)."""
        config = ClientConfig(max_concurrency=self.max_concurrency, requests_per_second=self.requests_per_second)
        return JofiClient.from_env(mode, base_url=self.base_url or None, config=config)

    def store(self, mode: Mode) -> WarehouseStore:
        """The mode's warehouse; with JOFI_PUBLISH_URL (or `publish_url`) it also uploads each version.

        A malformed publish URL is a WarehouseError here, before any request is sent."""
        remote = RemotePublisher.from_settings(
            self.publish_url or settings.publish_url(), os.environ.get(settings.ENV_PUBLISH_KEEP, "")
        )
        return WarehouseStore(self.data_root(), mode, remote=remote)

    def data_root(self) -> Path:
        return Path(self.data_dir) if self.data_dir else settings.data_dir()

    def options(self, *, full_refresh: bool = False, score_profiles: tuple[str, ...] = ()) -> SyncOptions:
        return SyncOptions(
            batch_size=self.batch_size,
            writer_wait_seconds=self.writer_wait_seconds,
            full_refresh=full_refresh,
            score_profiles=score_profiles,
        )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"jofi": JofiSyncResource()})
