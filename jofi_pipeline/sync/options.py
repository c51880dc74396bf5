"""What one sync run is asked to do, beyond which client and which store (the caller builds those)."""

from __future__ import annotations

from dataclasses import dataclass

# Records merged per write. Each merge joins its batch against the whole table it writes, opens
# history versions and commits: a full sync of 2,000 test takers in batches of 500 spent ~15 % more
# CPU than in batches of 2,000, which hold ~35 MB more at the peak (~400 MB; bare sync, no latency).
DEFAULT_BATCH_SIZE = 2000


@dataclass(frozen=True)
class SyncOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    full_refresh: bool = False
    # Limit the scorecard fan-out to these score profile short names (a one-profile backfill);
    # empty = every profile the account has enabled. Everything else in the run is unchanged.
    score_profiles: tuple[str, ...] = ()
    # How long to wait for another sync of this mode to finish before giving up (0: fail at once,
    # as the CLI does; Dagster runs queue behind each other instead of failing the nightly).
    writer_wait_seconds: float = 0.0
    # {entity: [ids]} (e.g. from webhook events): fetch only these by id, skip the lists. See targets.py.
    targets: dict[str, list] | None = None
