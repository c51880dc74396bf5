"""What one sync run is asked to do; built by the CLI or the Dagster resource."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_REQUESTS_PER_SECOND
from jofi_pipeline.settings import Mode


@dataclass(frozen=True)
class SyncOptions:
    mode: Mode
    base_url: str
    data_dir: Path
    # The key itself is not a field: repr() of options must be safe to log. It is read from the
    # environment (or given) only when the client is built.
    api_key_env_var: str
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    batch_size: int = 500
    full_refresh: bool = False
    # Limit the scorecard fan-out to these score profile short names (a one-profile backfill);
    # empty = every profile the account has enabled. Everything else in the run is unchanged.
    score_profiles: tuple[str, ...] = ()
    # How long to wait for another sync of this mode to finish before giving up (0: fail at once,
    # as the CLI does; Dagster runs queue behind each other instead of failing the nightly).
    writer_wait_seconds: float = 0.0
    # {entity: [ids]} (e.g. from webhook events): fetch only these by id, skip the lists. See targets.py.
    targets: dict[str, list] | None = None
    # s3://bucket/prefix (JOFI_PUBLISH_URL): also upload each published version there; '' = off.
    # Checked before anything is fetched. Credentials come from the standard AWS variables.
    publish_url: str = ""
    publish_keep: str = ""  # JOFI_PUBLISH_KEEP as given ('' = the default)
