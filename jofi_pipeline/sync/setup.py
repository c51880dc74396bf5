"""What a sync is handed (client, store, options), built from run-time settings without Dagster.

The Dagster resource (defs/resources.py) holds these settings as its config and builds through
here; a CLI sync's head start (head_start.py) builds the same things in its child process, which
never imports Dagster. The API key is not a setting: the client reads it from its env var.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jofi_pipeline import settings
from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_REQUESTS_PER_SECOND
from jofi_pipeline.settings import Mode
from jofi_pipeline.sync.options import DEFAULT_BATCH_SIZE, SyncOptions
from jofi_pipeline.sync.report import SyncReport
from jofi_pipeline.sync.runner import BeforePublish, Progress, run_sync
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.remote import RemotePublisher

DEFAULT_WRITER_WAIT_SECONDS = 3600.0


@dataclass(frozen=True)
class SyncSetup:
    """Where to read from and write to; empty values fall back to the JOFI_* env vars."""

    base_url: str = ""
    data_dir: str = ""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    batch_size: int = DEFAULT_BATCH_SIZE
    writer_wait_seconds: float = DEFAULT_WRITER_WAIT_SECONDS
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


async def sync_with(setup, mode: Mode, store: WarehouseStore, options: SyncOptions, progress: Progress,
                    before_publish: BeforePublish | None = None, run_id: str | None = None) -> SyncReport:
    """Build the mode's client from `setup` (a bad key or URL fails here, before any request) and sync."""
    async with setup.client(mode) as client:
        return await run_sync(client, store, options, progress=progress, before_publish=before_publish, run_id=run_id)


def score_profiles_in(text: str) -> tuple[str, ...]:
    """Short names from a comma-separated `score_profile` value, each once, in order."""
    return tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def resource_config(*, wait: float, concurrency: int | None = None, rate: float | None = None,
                    data_dir: Path | None = None) -> dict:
    """The `jofi` resource's config for a CLI sync: what the run records and the head start syncs with."""
    config: dict = {"writer_wait_seconds": wait}
    if concurrency is not None:
        config["max_concurrency"] = concurrency
    if rate is not None:
        config["requests_per_second"] = rate
    if data_dir is not None:
        config["data_dir"] = str(data_dir)
    return config
