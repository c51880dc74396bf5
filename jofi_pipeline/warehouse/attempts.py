"""Every sync attempt, one row each, in a small SQLite file that `status` can always read.

`sync_runs` lives in the working database, which a running sync holds (DuckDB: one process per
file), and a run refused before it opened that database has no row there at all. So each attempt
— succeeded, partial, failed or refused — is also written here, at its end, in one short SQLite
transaction: readers are never blocked for longer than that, during a sync too. One file for both
modes at the data dir's root (`ModePaths.attempts`), so a refused first sync creates no mode
folder. Only the newest `KEEP` attempts per mode are kept: this is what `status` shows, not an
archive (sync_runs is the record).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jofi_pipeline.warehouse.errors import WarehouseError

STATUSES = ("succeeded", "partial", "failed", "refused")
KEEP = 200
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mode TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    reason TEXT
)
"""


@dataclass(frozen=True)
class Attempt:
    """One attempt: its mode and sync run id, how it ended, when, and (unless it succeeded) why."""

    mode: str
    run_id: str
    status: str
    started_at: datetime
    finished_at: datetime
    reason: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class AttemptLog:
    """The attempts file (`ModePaths.attempts`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, attempt: Attempt) -> None:
        """Append `attempt` (and forget the oldest beyond KEEP). Raises WarehouseError naming the file."""
        if attempt.status not in STATUSES:
            raise ValueError(f"attempt status must be one of {', '.join(STATUSES)}, got {attempt.status!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute(_SCHEMA)
                con.execute(
                    "INSERT INTO attempts (mode, run_id, status, started_at, finished_at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                    (attempt.mode, attempt.run_id, attempt.status, attempt.started_at.isoformat(),
                     attempt.finished_at.isoformat(), attempt.reason),
                )
                con.execute(
                    "DELETE FROM attempts WHERE mode = ? AND seq <= "
                    "(SELECT seq FROM attempts WHERE mode = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (attempt.mode, attempt.mode, KEEP),
                )
        except (OSError, sqlite3.Error) as exc:
            raise self._failure("cannot record this attempt in", exc) from None

    def recent(self, mode: str, limit: int = 1) -> list[Attempt]:
        """The newest attempts of `mode`, newest first; [] when none was recorded yet."""
        if not self.path.exists():
            return []
        try:
            with self._connect() as con:
                con.execute(_SCHEMA)
                rows = con.execute(
                    "SELECT run_id, status, started_at, finished_at, reason FROM attempts WHERE mode = ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (mode, limit),
                ).fetchall()
        except (OSError, sqlite3.Error) as exc:
            raise self._failure("cannot read", exc) from None
        return [
            Attempt(mode, run_id, status, datetime.fromisoformat(started), datetime.fromisoformat(finished), reason)
            for run_id, status, started, finished, reason in rows
        ]

    def last(self, mode: str) -> Attempt | None:
        found = self.recent(mode, 1)
        return found[0] if found else None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection, one transaction (committed on success), always closed."""
        con = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S)
        try:
            with con:
                yield con
        finally:
            con.close()

    def _failure(self, what: str, exc: BaseException) -> WarehouseError:
        detail = str(exc) or type(exc).__name__
        return WarehouseError(
            f"{what} the attempts file {self.path} ({detail}); it only lists recent sync attempts for `status`: "
            f"if it is damaged, remove it (rm {self.path}) and the next sync starts a new one; if it cannot be "
            "written, make its folder writable by this user or point JOFI_DATA_DIR (or --data-dir) elsewhere"
        )
