"""Every path of one mode's warehouse, in one place (the public file layout is a contract).

    $JOFI_DATA_DIR/<mode>/
      jofi.duckdb -> current/jofi.duckdb    the published analyst database (read-only)
      parquet     -> current/parquet        the same tables as Parquet, one directory per table
      current     -> published.<version>    swapped by one rename per publish (publish.py)
      work/jofi_work.duckdb                 the working database: the system of record
      work/writer.lock                      one writer per mode (lock.py)
      work/remote_publish.json              the last upload to JOFI_PUBLISH_URL (remote.py), for status
      inbox/events.sqlite                   webhook events and imported ids (webhooks/inbox.py)
      identity.json                         whose data this folder holds (identity.py)

    $JOFI_DATA_DIR/attempts.sqlite          every sync attempt's outcome, both modes (attempts.py), for status

Nothing else in the project joins these names: it asks a `ModePaths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jofi_pipeline import settings
from jofi_pipeline.settings import Mode, parse_mode

DB_NAME = "jofi.duckdb"
PARQUET_NAME = "parquet"
CURRENT_LINK = "current"
WORK_DIR_NAME = "work"
WORK_DB_NAME = "jofi_work.duckdb"
LOCK_NAME = "writer.lock"
REMOTE_STATE_NAME = "remote_publish.json"
ATTEMPTS_NAME = "attempts.sqlite"
INBOX_DIR_NAME = "inbox"
INBOX_FILE_NAME = "events.sqlite"
IDENTITY_NAME = "identity.json"


@dataclass(frozen=True)
class ModePaths:
    """The files of one mode under a data dir. Pure paths: building one touches no disk."""

    data_dir: Path
    mode: Mode

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "mode", parse_mode(self.mode))

    @classmethod
    def of(cls, mode: Mode | str, data_dir: Path | str | None = None) -> ModePaths:
        """`data_dir` defaults to JOFI_DATA_DIR (or ./data)."""
        return cls(Path(data_dir) if data_dir is not None else settings.data_dir(), mode)  # type: ignore[arg-type]

    @property
    def mode_dir(self) -> Path:
        return self.data_dir / self.mode

    @property
    def published_db(self) -> Path:
        return self.mode_dir / DB_NAME

    @property
    def parquet(self) -> Path:
        return self.mode_dir / PARQUET_NAME

    @property
    def current(self) -> Path:
        return self.mode_dir / CURRENT_LINK

    @property
    def work_dir(self) -> Path:
        return self.mode_dir / WORK_DIR_NAME

    @property
    def work_db(self) -> Path:
        return self.work_dir / WORK_DB_NAME

    @property
    def lock(self) -> Path:
        return self.work_dir / LOCK_NAME

    @property
    def remote_state(self) -> Path:
        return self.work_dir / REMOTE_STATE_NAME

    @property
    def attempts(self) -> Path:
        return self.data_dir / ATTEMPTS_NAME

    @property
    def inbox(self) -> Path:
        return self.mode_dir / INBOX_DIR_NAME / INBOX_FILE_NAME

    @property
    def identity(self) -> Path:
        return self.mode_dir / IDENTITY_NAME
