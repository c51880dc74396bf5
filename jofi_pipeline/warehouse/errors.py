"""Errors the warehouse raises, each with a message that says what to do next."""

from __future__ import annotations


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
