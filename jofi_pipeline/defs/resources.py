"""Run-time settings for a sync, as one Dagster resource.

The API keys are deliberately not resource fields: a field's value can end up in run config and
Dagster's event log. The resource holds the *names* of the env vars and reads the key only when
the client is built, so an unset test key never breaks a live run and no key reaches Dagster.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_REQUESTS_PER_SECOND
from jofi_pipeline.settings import Mode
from jofi_pipeline.sync import SyncOptions


class JofiSyncResource(dg.ConfigurableResource):
    """Where to read from and write to; empty values fall back to the JOFI_* env vars."""

    base_url: str = ""
    data_dir: str = ""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    batch_size: int = 500
    # A run that finds another sync of its mode writing waits this long for it (then fails clearly).
    writer_wait_seconds: float = 3600.0
    # s3://bucket/prefix: also upload each published version there (default: env JOFI_PUBLISH_URL).
    publish_url: str = ""

    def options(self, mode: Mode, *, full_refresh: bool = False, score_profiles: tuple[str, ...] = ()) -> SyncOptions:
        return SyncOptions(
            mode=mode,
            base_url=self.base_url or settings.base_url(),
            data_dir=Path(self.data_dir) if self.data_dir else settings.data_dir(),
            api_key_env_var=settings.KEY_ENV_VAR[mode],
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
            batch_size=self.batch_size,
            writer_wait_seconds=self.writer_wait_seconds,
            publish_url=self.publish_url or settings.publish_url(),
            publish_keep=os.environ.get(settings.ENV_PUBLISH_KEEP, ""),
            full_refresh=full_refresh,
            score_profiles=score_profiles,
        )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"jofi": JofiSyncResource()})
