"""Run-time settings for a sync, as one Dagster resource that builds what a sync is handed.

The API keys are deliberately not resource fields: a field's value can end up in run config and
Dagster's event log. The client reads the key from its env var (settings.KEY_ENV_VAR) when it is
built, for the one mode a run syncs, so an unset test key never breaks a live run and no key
reaches Dagster. The CLI's `sync` runs the same job, so it builds its client here too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg

from jofi_pipeline.api import JofiClient
from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_REQUESTS_PER_SECOND
from jofi_pipeline.settings import Mode
from jofi_pipeline.sync import SyncOptions
from jofi_pipeline.sync.options import DEFAULT_BATCH_SIZE
from jofi_pipeline.sync.setup import DEFAULT_WRITER_WAIT_SECONDS, SyncSetup
from jofi_pipeline.warehouse import WarehouseStore


class JofiSyncResource(dg.ConfigurableResource):
    """Where to read from and write to; empty values fall back to the JOFI_* env vars."""

    base_url: str = ""
    data_dir: str = ""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    batch_size: int = DEFAULT_BATCH_SIZE
    # A run that finds another sync of its mode writing waits this long for it (then fails clearly).
    writer_wait_seconds: float = DEFAULT_WRITER_WAIT_SECONDS
    # s3://bucket/prefix: also upload each published version there (default: env JOFI_PUBLISH_URL).
    publish_url: str = ""

    def setup(self) -> SyncSetup:
        """The same settings, for what builds a sync (sync/setup.py: shared with the CLI's head start).

        Field by field, by SyncSetup's names: its fields and these are declared twice on purpose
        (Dagster's config schema here, a Dagster-free dataclass there for the head start's child),
        and a test holds the two lists and their defaults equal."""
        return SyncSetup(**{field.name: getattr(self, field.name) for field in dataclasses.fields(SyncSetup)})

    def client(self, mode: Mode) -> JofiClient:
        """The mode's client, its key from the environment (ConfigError, fatal, before any request)."""
        return self.setup().client(mode)

    def store(self, mode: Mode) -> WarehouseStore:
        """The mode's warehouse (a malformed publish URL is a WarehouseError here, before any request)."""
        return self.setup().store(mode)

    def data_root(self) -> Path:
        return self.setup().data_root()

    def options(self, *, full_refresh: bool = False, score_profiles: tuple[str, ...] = ()) -> SyncOptions:
        return self.setup().options(full_refresh=full_refresh, score_profiles=score_profiles)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"jofi": JofiSyncResource()})
