"""What an interrupted sync command says: what its sync really did, as the attempts file records it.

Ctrl-C (or a stopped run) can come after the publish switched the published version, while
Dagster still records the tables' materializations and checks: the run fails as interrupted,
though the new data is live. "Nothing was published" would then be false. Every sync records
its attempt when it ends (a publish under way is let finish first: sync/uninterrupted.py), so
the command reads that record before it says what happened.
"""

from __future__ import annotations

from datetime import datetime

from jofi_pipeline import settings
from jofi_pipeline.sync.explain import INTERRUPTED
from jofi_pipeline.warehouse import ModePaths, WarehouseError
from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog

PUBLISHED = ("succeeded", "partial")
RECENT = 20  # attempts looked at: this command's, and any refused meanwhile by its writer lock


def interrupted_reason(paths: ModePaths, since: datetime) -> str:
    """INTERRUPTED ("nothing was published"), unless a sync of this mode begun at or after `since`
    (when the command began) recorded that it published: then that, and what is left undone."""
    try:
        attempts = AttemptLog(paths.attempts).recent(paths.mode, RECENT)
    except WarehouseError:
        return INTERRUPTED  # unreadable: the run's own word stands
    published = next((a for a in attempts if a.started_at >= since and a.status in PUBLISHED), None)
    return INTERRUPTED if published is None else published_then_interrupted(published)


def published_then_interrupted(attempt: Attempt) -> str:
    return (f"the sync was interrupted (Ctrl-C, or its run was stopped), yet its data is published (sync run "
            f"{attempt.run_id}, {attempt.status}): its publish had begun, and a publish once begun always finishes. "
            f"`{settings.CLI} status` shows it; only the Dagster run's record of it (the tables' materializations "
            "and checks) was cut short. Nothing needs to be synced again: the next sync records them")
