"""A CLI sync refused before anything starts (another sync of the mode is writing), without Dagster.

Checked before the sync's head start (head_start.py) and before any Dagster run exists, so a
refusal never marks an asset partition failed. The failure classes the CLI prints live here too:
the command catches them before it has imported Dagster.
"""

from __future__ import annotations

from pathlib import Path

from jofi_pipeline.settings import Mode


class SyncJobFailed(Exception):
    """The run failed; the message is the one-line reason."""


class SyncRefused(SyncJobFailed):
    """Another sync of the mode is writing: nothing was started, no Dagster run exists."""


def writer_busy(mode: Mode, data_dir: Path | None) -> str | None:
    """Who holds the mode's writer lock right now, or None when a sync could start."""
    from jofi_pipeline.warehouse import ModePaths
    from jofi_pipeline.warehouse.lock import writer_holder

    return writer_holder(ModePaths.of(mode, data_dir).lock, mode)


def refuse_if_busy(mode: Mode, data_dir: Path | None, wait: float) -> None:
    """A person at a terminal is told at once that another sync is writing (unless they ask to wait)."""
    refusal = writer_busy(mode, data_dir)
    if refusal and wait <= 0:
        from jofi_pipeline.sync.attempts import record_refusal
        from jofi_pipeline.warehouse import ModePaths

        record_refusal(ModePaths.of(mode, data_dir), refusal)  # for `status`: the last attempt was refused
        raise SyncRefused(f"{mode} sync not started: {refusal}")
