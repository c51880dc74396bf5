"""What an interrupted sync command says: what its own sync really did, as the attempts file records it.

Ctrl-C (or a stopped run) can come after the publish switched the published version, while
Dagster still records the tables' materializations and checks: the run fails as interrupted,
though the new data is live. "Nothing was published" would then be false. Every sync records
its attempt when it ends (a publish under way is let finish first: sync/uninterrupted.py), so
the command reads the record of its own sync run (its id: own_runs.py, or the head start's)
before it says what happened; another process's publish meanwhile is not its own. A second
interrupt can end the command while its publish still runs, unrecorded: then it says so.
"""

from __future__ import annotations

from collections.abc import Collection

from jofi_pipeline import settings
from jofi_pipeline.sync.explain import INTERRUPTED
from jofi_pipeline.warehouse import ModePaths, WarehouseError
from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog

PUBLISHED = ("succeeded", "partial")
RECENT = 20  # attempts looked at: this command's, and any refused meanwhile by its writer lock


def interrupted_reason(paths: ModePaths, own_run_ids: Collection[str]) -> str:
    """INTERRUPTED ("nothing was published") when this command's sync never opened its writer or
    recorded that it did not publish; that it published, if it recorded so; else that it is not
    known yet (its publish may still be finishing)."""
    if not own_run_ids:
        return INTERRUPTED  # it never opened its writer: it published nothing
    try:
        attempts = AttemptLog(paths.attempts).recent(paths.mode, RECENT)
    except WarehouseError:
        return INTERRUPTED  # unreadable: the run's own word stands
    own = [a for a in attempts if a.run_id in own_run_ids]
    published = next((a for a in own if a.status in PUBLISHED), None)
    if published is not None:
        return published_then_interrupted(published)
    return INTERRUPTED if own else NOT_KNOWN_YET


def published_then_interrupted(attempt: Attempt) -> str:
    return (f"the sync was interrupted (Ctrl-C, or its run was stopped), yet its data is published (sync run "
            f"{attempt.run_id}, {attempt.status}): its publish had begun, and a publish under way is let finish. "
            f"`{settings.CLI} status` shows it; only the Dagster run's record of it (the tables' materializations "
            "and checks) was cut short. Nothing needs to be synced again: the next sync records them")


NOT_KNOWN_YET = ("the sync was interrupted (Ctrl-C, or its run was stopped) before it recorded how it ended: whether "
                 "it published is not known yet (a publish under way is let finish, unless the sync had to be killed "
                 "after a second Ctrl-C or its grace period); "
                 f"`{settings.CLI} status` shows what was published")
