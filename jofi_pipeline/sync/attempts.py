"""Each sync attempt's outcome, written to the attempts file for `status` (warehouse/attempts.py).

An attempt is `refused` when it stopped before writing anything (bad key or config, the API
unreachable or answering for the other mode, another sync writing, storage that will not open);
`failed` when it stopped after it began writing (what it fetched is kept, nothing was published);
`succeeded` or `partial` when it published. Recording is bookkeeping: it never fails a run, and a
refusal is recorded only where the mode has a warehouse (a refused first sync writes nothing), and
not when the folder holds another mode's or account's data (that refusal says "nothing was written").
"""

from __future__ import annotations

import logging

from jofi_pipeline.sync.explain import explain
from jofi_pipeline.sync.report import SyncFailed, SyncReport, utc_now
from jofi_pipeline.warehouse import ModePaths, WarehouseError
from jofi_pipeline.warehouse.attempts import Attempt, AttemptLog
from jofi_pipeline.warehouse.identity import IdentityError

log = logging.getLogger("jofi_pipeline.sync")


def record_attempt(paths: ModePaths, report: SyncReport, status: str | None = None) -> None:
    """Append the attempt `report` describes (its status and error unless `status` is given)."""
    status = status or report.status
    reason = None if status == "succeeded" else report.error
    try:
        AttemptLog(paths.attempts).record(Attempt(report.mode, report.run_id, status, report.started_at, utc_now(), reason))
    except WarehouseError as exc:
        if paths.data_dir.is_dir():  # else the run's own error already says the data dir is unusable
            log.warning("%s: %s", report.mode, exc)


def refused(paths: ModePaths, report: SyncReport, exc: BaseException) -> SyncFailed:
    """The SyncFailed for a run that wrote nothing, after recording it as `refused` (see record_refusal)."""
    report.error = explain(exc)
    # A folder that holds another mode's or account's data (identity.py) is refused with "nothing
    # was written", and that stays true of the whole data dir: not recorded.
    if paths.mode_dir.is_dir() and not isinstance(exc, IdentityError):
        record_attempt(paths, report, "refused")
    return SyncFailed(report.error, run_id=report.run_id)


def record_refusal(paths: ModePaths, reason: str) -> None:
    """A sync refused before it began (e.g. by the CLI, while another sync of the mode is writing).

    Recorded only where the mode has a warehouse already: a refused first sync (a wrong key, a
    wrong URL) writes nothing at all, and says why on its own.
    """
    if not paths.mode_dir.is_dir():
        return
    from jofi_pipeline.sync.runner import new_run_id

    now = utc_now()
    report = SyncReport(run_id=new_run_id(paths.mode, now), mode=paths.mode, started_at=now, error=reason)
    record_attempt(paths, report, "refused")
