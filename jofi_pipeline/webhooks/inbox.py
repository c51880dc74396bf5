"""The per-mode inbox: received webhook events and the record ids a sync must fetch by id.

`ModePaths.inbox` (`$JOFI_DATA_DIR/<mode>/inbox/events.sqlite`), SQLite in WAL mode with synchronous=FULL, so an
event is on disk before the receiver answers 2xx, and a sync can read (and mark applied) while the
receiver keeps appending. Only the receiver (live), `import-ids` and the window watcher (either
mode) write new rows; the sync marks rows applied after the data they name is committed. The
watcher keeps its own state in tables of its own here too (watch_log.py), written in the same
transaction as the ids it queues.

Tables:
  events       one row per event id (UNIQUE): a redelivery is stored once.
  pending_ids  one row per (entity, id) an event, an import or the watcher named; `seq` is the sensor cursor;
               `applied_at` is set once a sync committed that record.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from jofi_pipeline import entities

BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    event_created_at TEXT,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_ids (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    object_id TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT,
    added_at TEXT NOT NULL,
    applied_at TEXT,
    applied_run_id TEXT
);
CREATE INDEX IF NOT EXISTS pending_ids_unapplied ON pending_ids (applied_at, seq);
CREATE INDEX IF NOT EXISTS pending_ids_entity_id ON pending_ids (entity, object_id);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class InboxError(Exception):
    """The inbox file cannot be used; the message names it and says what to do (never "just delete it"
    when it is only unwritable: it holds received events and ids no sync has fetched yet)."""

    @classmethod
    def of(cls, path: Path, exc: BaseException) -> InboxError:
        detail = str(exc).strip() or type(exc).__name__
        text = detail.lower()
        if "not a database" in text or "malformed" in text:
            return cls(
                f"the inbox {path} is damaged ({detail}): move it aside (mv {path} {path}.broken) and the receiver, "
                f"import-ids and the watcher start a new one; ids still pending in it are not fetched until imported "
                f"again (`sqlite3 {path}.broken .recover` may save them)"
            )
        if "locked" in text or "busy" in text:
            return cls(f"the inbox {path} is locked by another process ({detail}); wait for it and retry")
        return cls(
            f"cannot use the inbox {path} ({detail}): make {path.parent} writable by this user, or point "
            "JOFI_DATA_DIR (or --data-dir) at a writable directory"
        )


@dataclass(frozen=True)
class PendingId:
    seq: int
    entity: str
    object_id: str
    source: str


class Inbox:
    """One inbox file. Thread-safe (one connection behind a lock); open it with `Inbox.open`."""

    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self._con = con
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Inbox:
        path = Path(path)
        if not create and not path.exists():
            raise FileNotFoundError(path)
        con = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")  # fsync on every commit: stored means on disk
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            if con is not None:
                con.close()
            raise InboxError.of(path, exc) from None
        return cls(con, path)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it is on disk, or none of it."""
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    yield self._con
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
                self._con.execute("COMMIT")
            except sqlite3.Error as exc:
                raise InboxError.of(self.path, exc) from None

    # ---- writing ------------------------------------------------------------------------

    def add_event(
        self, event_id: str, event_type: str, created_at: str | None, body: str, targets: Iterable[tuple[str, str]]
    ) -> bool:
        """Store an event and the ids it names, in one transaction. False if the id was already stored."""
        now = _now()
        with self.transaction() as con:
            cur = con.execute(
                "INSERT OR IGNORE INTO events (event_id, type, event_created_at, received_at, body) VALUES (?, ?, ?, ?, ?)",
                (event_id, event_type, created_at, now, body),
            )
            if cur.rowcount == 0:
                return False
            con.executemany(
                "INSERT INTO pending_ids (entity, object_id, source, event_id, added_at) VALUES (?, ?, 'event', ?, ?)",
                [(entity, canonical_id(entity, object_id), event_id, now) for entity, object_id in targets],
            )
        return True

    def add_imported(self, entity: str, object_ids: Iterable[str]) -> tuple[int, int]:
        """Register ids to fetch; returns (new, already in the inbox). One transaction."""
        _check_entity(entity)
        with self.transaction() as con:
            return queue_ids(con, entity, object_ids, "import")

    def mark_applied(self, run_id: str, up_to_seq: int, only: dict[str, set[str]] | None = None) -> int:
        """Mark unapplied rows with seq <= up_to_seq applied (restricted to `only` ids when given)."""
        now = _now()
        with self.transaction() as con:
            if only is None:
                cur = con.execute(
                    "UPDATE pending_ids SET applied_at = ?, applied_run_id = ? WHERE applied_at IS NULL AND seq <= ?",
                    (now, run_id, up_to_seq),
                )
                return cur.rowcount
            marked = 0
            for entity, ids in only.items():
                for object_id in ids:
                    cur = con.execute(
                        "UPDATE pending_ids SET applied_at = ?, applied_run_id = ? "
                        "WHERE applied_at IS NULL AND seq <= ? AND entity = ? AND object_id = ?",
                        (now, run_id, up_to_seq, entity, str(object_id)),
                    )
                    marked += cur.rowcount
            return marked

    # ---- reading ------------------------------------------------------------------------

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._con.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise InboxError.of(self.path, exc) from None

    def last_seq(self) -> int:
        return self.read("SELECT coalesce(max(seq), 0) FROM pending_ids")[0][0]

    def unapplied(self, up_to_seq: int | None = None) -> list[PendingId]:
        rows = self.read(
            "SELECT seq, entity, object_id, source FROM pending_ids WHERE applied_at IS NULL AND seq <= ? ORDER BY seq",
            (up_to_seq if up_to_seq is not None else 2**62,),
        )
        return [PendingId(*row) for row in rows]

    def after(self, seq: int, limit: int) -> list[PendingId]:
        """Rows added after `seq` (the sensor's cursor), oldest first, applied or not."""
        rows = self.read(
            "SELECT seq, entity, object_id, source FROM pending_ids WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [PendingId(*row) for row in rows]

    def event_count(self) -> int:
        return self.read("SELECT count(*) FROM events")[0][0]

    def event_ids(self) -> list[str]:
        return [r[0] for r in self.read("SELECT event_id FROM events ORDER BY seq")]

    def counts(self) -> dict[str, int]:
        """Unapplied ids per entity (what the next sync will fetch by id)."""
        rows = self.read("SELECT entity, count(DISTINCT object_id) FROM pending_ids WHERE applied_at IS NULL GROUP BY 1")
        return dict(rows)


def queue_ids(con: sqlite3.Connection, entity: str, object_ids: Iterable[str], source: str) -> tuple[int, int]:
    """Inside a transaction: add the ids not in the inbox yet (whatever their state); (new, known)."""
    now = _now()
    new = known = 0
    for object_id in map(partial(canonical_id, entity), object_ids):
        if con.execute("SELECT 1 FROM pending_ids WHERE entity = ? AND object_id = ? LIMIT 1", (entity, object_id)).fetchone():
            known += 1
            continue
        con.execute(
            "INSERT INTO pending_ids (entity, object_id, source, added_at) VALUES (?, ?, ?, ?)", (entity, object_id, source, now)
        )
        new += 1
    return new, known


def canonical_id(entity: str, object_id: object) -> str:
    """The id as the inbox stores it, or InvalidIdError: the inbox never holds an id that breaks the
    registry's rule (every door filters first; this is the last line, so a caller's slip raises)."""
    return str(entities.parse_id(entity, object_id))


def _check_entity(entity: str) -> None:
    if entity not in entities.INBOX_ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; known: {', '.join(entities.INBOX_ENTITIES)}")


def group_ids(rows: Iterable[PendingId]) -> dict[str, list[str]]:
    """Distinct ids per entity, in first-seen order."""
    grouped: dict[str, dict[str, None]] = {}
    for row in rows:
        grouped.setdefault(row.entity, {})[row.object_id] = None
    return {entity: list(ids) for entity, ids in grouped.items()}
