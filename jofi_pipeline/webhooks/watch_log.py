"""The window watcher's own state, in tables of its own inside the mode's inbox (never the sync's DuckDB).

  watch_windows  per capped list, what the last good poll saw: total_count, how many were listed,
                 the newest listed id, and the created_at of the newest and the oldest listed record
                 (the API's clock; only invitations carry one in their list items)
  watch_polls    one row per poll: outcome, requests, ids queued, records missed, the interval chosen
  watch_gaps     one row per window that turned over between two polls: how many records were
                 missed between which two polls, and the interval before and after

A poll's ids, its window marks, its gaps and its poll row are written in one transaction with the
ids it queues, so a crash can never leave ids queued against marks that do not know it (or the
reverse). A failed poll only adds its poll row: earlier marks and queued ids stay as they were.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from jofi_pipeline.webhooks.inbox import Inbox, queue_ids

SOURCE = "watch"

SCHEMA = """
CREATE TABLE IF NOT EXISTS watch_windows (
    entity TEXT PRIMARY KEY,
    polled_at TEXT NOT NULL,
    total_count INTEGER,
    listed INTEGER NOT NULL,
    has_more INTEGER NOT NULL,
    newest_id TEXT,
    newest_at TEXT,
    oldest_at TEXT
);
CREATE TABLE IF NOT EXISTS watch_polls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    polled_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    requests INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    missed INTEGER NOT NULL,
    interval_s REAL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS watch_gaps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    since TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    total_before INTEGER NOT NULL,
    total_now INTEGER NOT NULL,
    listed INTEGER NOT NULL,
    missed INTEGER NOT NULL,
    interval_before_s REAL,
    interval_after_s REAL
);
"""


@dataclass(frozen=True)
class WindowMark:
    """What one poll saw of one capped list. `polled_at` is the watcher's clock; `newest_at` and
    `oldest_at` are the API's `created_at`s of the listed records, when the items carry one."""

    entity: str
    polled_at: str
    total_count: int | None
    listed: int
    has_more: bool
    newest_id: str | None
    newest_at: datetime | None
    oldest_at: datetime | None


@dataclass(frozen=True)
class Gap:
    """`missed` records created between the poll at `since` and the one at `detected_at` that
    neither listed: the window turned over in between."""

    entity: str
    since: str
    detected_at: str
    total_before: int
    total_now: int
    listed: int
    missed: int
    interval_before_s: float | None
    interval_after_s: float | None


@dataclass(frozen=True)
class PollRecord:
    polled_at: str
    outcome: str  # ok | partial (some lists failed) | failed
    requests: int
    queued: int
    missed: int
    interval_s: float | None
    detail: str = ""


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class WatchLog:
    """The watcher's tables in one open inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        with inbox.transaction() as con:
            _create(con)  # not executescript: it would commit the open transaction

    # ---- writing ------------------------------------------------------------------------

    def record_poll(
        self, ids: Mapping[str, Iterable[str]], marks: Iterable[WindowMark], gaps: Iterable[Gap], poll: PollRecord
    ) -> dict[str, int]:
        """Queue the ids not in the inbox yet and store what the poll saw, in one transaction.

        Returns the ids newly queued per entity; `poll.queued` is replaced by their sum. A gap is
        kept only if its list's stored mark is still the one it was measured from: two watchers
        polling at once (cron and the sensor) do not count the same missed records twice.
        """
        with self.inbox.transaction() as con:
            queued = {entity: queue_ids(con, entity, list(values), SOURCE)[0] for entity, values in ids.items()}
            stored = dict(con.execute("SELECT entity, polled_at FROM watch_windows").fetchall())
            gaps = [gap for gap in gaps if stored.get(gap.entity) == gap.since]
            for mark in marks:
                con.execute(
                    "INSERT OR REPLACE INTO watch_windows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (mark.entity, mark.polled_at, mark.total_count, mark.listed, int(mark.has_more), mark.newest_id,
                     _ts(mark.newest_at), _ts(mark.oldest_at)),
                )
            for gap in gaps:
                row = astuple(gap)
                con.execute(
                    f"INSERT INTO watch_gaps ({', '.join(f.name for f in fields(Gap))}) VALUES ({', '.join('?' * len(row))})",
                    row,
                )
            _insert_poll(con, replace(poll, queued=sum(queued.values()), missed=sum(g.missed for g in gaps)))
        return queued

    def record_failure(self, poll: PollRecord) -> None:
        with self.inbox.transaction() as con:
            _insert_poll(con, poll)

    # ---- reading ------------------------------------------------------------------------

    def windows(self) -> dict[str, WindowMark]:
        rows = self.inbox.read("SELECT * FROM watch_windows")
        return {
            r[0]: WindowMark(r[0], r[1], r[2], r[3], bool(r[4]), r[5], _dt(r[6]), _dt(r[7])) for r in rows
        }

    def last_poll(self, *, good: bool = False) -> PollRecord | None:
        where = "WHERE outcome != 'failed'" if good else ""
        rows = self.inbox.read(
            f"SELECT polled_at, outcome, requests, queued, missed, interval_s, detail FROM watch_polls {where} "
            "ORDER BY seq DESC LIMIT 1"
        )
        return PollRecord(*rows[0]) if rows else None

    def polls(self) -> list[PollRecord]:
        rows = self.inbox.read(
            "SELECT polled_at, outcome, requests, queued, missed, interval_s, detail FROM watch_polls ORDER BY seq"
        )
        return [PollRecord(*r) for r in rows]

    def gaps(self) -> list[Gap]:
        names = [f.name for f in fields(Gap)]
        rows = self.inbox.read(f"SELECT {', '.join(names)} FROM watch_gaps ORDER BY seq")
        return [Gap(*r) for r in rows]

    def missed_by_entity(self) -> dict[str, int]:
        return dict(self.inbox.read("SELECT entity, sum(missed) FROM watch_gaps GROUP BY entity ORDER BY entity"))


def _create(con: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)


def _insert_poll(con: sqlite3.Connection, poll: PollRecord) -> None:
    con.execute(
        "INSERT INTO watch_polls (polled_at, outcome, requests, queued, missed, interval_s, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        astuple(poll),
    )


@dataclass(frozen=True)
class WatchSummary:
    """What `status` and the coverage check say about the watcher of one mode."""

    last: PollRecord | None
    last_good: PollRecord | None
    polls: int
    missed: dict[str, int]
    gaps: list[Gap]

    def lines(self) -> list[str]:
        if self.last is None:
            return []
        last = self.last
        text = f"   window watcher: last poll {last.polled_at[:19]} {last.outcome} ({last.requests} requests)"
        if last.interval_s:
            text += f", interval {format_interval(last.interval_s)}"
        out = [text]
        if last.outcome == "failed" and last.detail:
            out.append(f"     last error: {last.detail}")
        if self.missed:
            per = ", ".join(f"{e}={n}" for e, n in self.missed.items())
            newest = self.gaps[-1]
            out.append(
                f"     missed between polls (windows turned over): {per}; last at {newest.detected_at[:19]}: "
                f"{newest.missed} {newest.entity}, interval shortened to {format_interval(newest.interval_after_s or 0)}"
            )
        return out


def summary(path: Path) -> WatchSummary | None:
    """The watcher's summary from an inbox file, or None when there is no inbox or it never polled."""
    if not Path(path).exists():
        return None
    with Inbox.open(path, create=False) as inbox:
        log = WatchLog(inbox)
        last = log.last_poll()
        if last is None:
            return None
        return WatchSummary(last, log.last_poll(good=True), len(log.polls()), log.missed_by_entity(), log.gaps())


def format_interval(seconds: float) -> str:
    """7380 -> '2h03m'; 90 -> '1m30s'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
