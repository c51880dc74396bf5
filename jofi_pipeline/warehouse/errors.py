"""Errors the warehouse raises, each with a message that says what to do next."""

from __future__ import annotations

import os

from jofi_pipeline import settings


class WarehouseError(Exception):
    """Base class for everything the warehouse room raises on purpose."""


class WarehouseBusyError(WarehouseError):
    """Another writer holds this mode's lock: DuckDB allows one writer per file."""


class ModeMismatchError(WarehouseError):
    """An object claims a different mode than the store: live and test data must never meet."""


class UnknownEntityError(WarehouseError, ValueError):
    """The caller named an entity the warehouse has no table spec for."""


class PublishError(WarehouseError):
    """Publishing failed; the previously published files are untouched."""


class PublishRefusedError(PublishError):
    """The work database breaks a blocking integrity rule (integrity.py); nothing was published.

    `findings` holds every rule judged, so a caller (the Dagster asset) can show each check.
    """

    def __init__(self, message: str, findings: list) -> None:
        super().__init__(message)
        self.findings = findings


def out_of_memory(exc: BaseException) -> str:
    """What to do when DuckDB ran out of the work database's memory limit (settings.work_memory)."""
    current = os.environ.get(settings.ENV_WORK_MEMORY, "").strip() or settings.DEFAULT_WORK_MEMORY
    try:
        larger = _size_text(4 * settings.work_memory())
    except ValueError:  # an unusable setting never gets this far (store.open_run refuses it)
        larger = "512MB"
    said = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return (f"the warehouse ran out of memory under its limit {settings.ENV_WORK_MEMORY}={current}: set a larger "
            f"one (e.g. {settings.ENV_WORK_MEMORY}={larger}) and run the sync again; nothing was published "
            f"(DuckDB said: {said})")


def _size_text(size: int) -> str:
    """Bytes as DuckDB and JOFI_WORK_MEMORY write them: whole GB past 1 GB, else whole MB."""
    return f"{size // 1000**3}GB" if size >= 1000**3 else f"{size // 1000**2}MB"
