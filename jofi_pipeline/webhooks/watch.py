"""The window watcher: completeness without webhooks, for three list requests per poll.

JOFI's capped lists show only the newest 30-50 records. Read often enough, they show every new
record while it is still listed. Each poll reads the first page of the three capped lists (one
request each, through JofiClient: same retries and rate-limit handling as the sync), queues in
the mode's inbox every listed id that neither the published warehouse nor the inbox holds yet, and
the next sync fetches those by id, exactly as for webhook events and `import-ids`.

How often: from the observed turnover (new records per second: the growth of `total_count`
since the last poll, and the span of `created_at`s the window lists where items carry them), at
most `SAFE_SHARE` of a window per interval. The clock is injectable (`poll_once(now=...)`), so a
simulation can run the watcher on the simulated clock. A window that turned over between two polls (its oldest
listed record is newer than the newest seen before, and `total_count` grew by more than it lists)
lost `growth - listed` records for good: the poll says so, records the gap in the watcher's state
(watch_log.py, in the inbox) and shortens the interval. It never opens the sync's DuckDB file.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jofi_pipeline.api import ClientConfig, JofiApiError, JofiClient, ListResult
from jofi_pipeline.entities import CAPPED_LISTS, ENTITIES, is_valid_id
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, WarehouseError, identity
from jofi_pipeline.warehouse.identity import IdentityError
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline.webhooks.watch_log import Gap, PollRecord, WatchLog, WindowMark, format_interval

log = logging.getLogger("jofi_pipeline.watch")

SAFE_SHARE = 0.5  # at most half a window of new records per interval: room for a busy hour
SMALLEST_CAP = 30  # the smallest documented window, assumed while a list is not full yet
MIN_INTERVAL_S = 60.0
MAX_INTERVAL_S = 6 * 3600.0  # even a quiet account is looked at four times a day
FIRST_INTERVAL_S = 15 * 60.0  # until the turnover is measured: a second poll shows the growth


def client_config() -> ClientConfig:
    """The sync's client settings, but one page per list: JOFI's lists are windows, not pages."""
    return ClientConfig(max_pages=1)


def build_client(mode: str, base_url: str | None = None) -> JofiClient:
    """A client for `mode` with its key from the environment (ConfigError, fatal, when missing)."""
    return JofiClient(None, mode=mode, base_url=base_url or None, config=client_config())


# ---- reading one window ------------------------------------------------------------------


def created_at(item: Any) -> datetime | None:
    value = item.get("created_at") if isinstance(item, dict) else None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def listed_ids(entity: str, listing: ListResult) -> list[str]:
    """Ids as the inbox stores them (text). An item whose id breaks the registry's rule (2**64, '..',
    a number sent as text) is skipped: it is never queued, so it can never stop a sync."""
    out = []
    for item in listing.items:
        value = item.get("id") if isinstance(item, dict) else None
        if is_valid_id(entity, value):
            out.append(str(value))
        elif value is not None:
            log.warning("watch: a %s item with an invalid id %s was not queued (an id must be %s)",
                        entity, repr(value)[:40], ENTITIES[entity].id_rule)
    return out


def mark_of(entity: str, listing: ListResult, polled_at: str) -> WindowMark:
    ids = listed_ids(entity, listing)
    moments = [m for m in map(created_at, listing.items) if m is not None]
    return WindowMark(
        entity=entity,
        polled_at=polled_at,
        total_count=listing.total_count,
        listed=len(listing.items),
        has_more=listing.has_more,
        newest_id=ids[0] if ids else None,
        newest_at=max(moments) if moments else None,
        oldest_at=min(moments) if moments else None,
    )


def growth(before: WindowMark, now: WindowMark) -> int | None:
    if before.total_count is None or now.total_count is None:
        return None
    return now.total_count - before.total_count


def missed_between(before: WindowMark, now: WindowMark, now_ids: list[str]) -> int:
    """Records created between two polls that neither listed: 0 unless the window turned over.

    Turned over = the oldest record listed now is newer than the newest listed before (the newest
    id seen before is gone from the list; by `created_at` too where items carry it), while
    `total_count` grew by more than the window lists: then `growth - listed` records were never shown.
    """
    grew = growth(before, now)
    if grew is None or grew <= now.listed:
        return 0
    overlap = before.newest_id is not None and before.newest_id in now_ids
    if before.newest_at is not None and now.oldest_at is not None:
        overlap = overlap or not now.oldest_at > before.newest_at
    return 0 if overlap else grew - now.listed  # overlap: the counts disagree with the window, claim nothing


def window_size(mark: WindowMark) -> int:
    return mark.listed if mark.has_more else max(mark.listed, SMALLEST_CAP)


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def turnover_per_s(before: WindowMark | None, now: WindowMark) -> float | None:
    """New records per second: the larger of the growth since the last poll (our clock) and the
    rate the listed window was created at (the API's clock, where items carry `created_at`).
    None when nothing could be measured yet (a first poll of a list without timestamps)."""
    rates = []
    if now.has_more and now.listed >= 2 and now.newest_at and now.oldest_at and now.newest_at > now.oldest_at:
        rates.append((now.listed - 1) / (now.newest_at - now.oldest_at).total_seconds())
    grew = growth(before, now) if before else None
    elapsed = seconds_between(before.polled_at, now.polled_at) if before else 0.0
    if grew is not None and elapsed > 0:
        rates.append(max(grew, 0) / elapsed)
    return max(rates) if rates else None


def safe_interval_s(before: WindowMark | None, now: WindowMark) -> float | None:
    """The longest interval in which at most SAFE_SHARE of this window fills up.

    None = no limit from this list (nothing new arrived); FIRST_INTERVAL_S while unmeasured."""
    rate = turnover_per_s(before, now)
    if rate is None:
        return FIRST_INTERVAL_S
    return SAFE_SHARE * window_size(now) / rate if rate > 0 else None


def clamp(seconds: float) -> float:
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, seconds))


# ---- one poll ----------------------------------------------------------------------------


@dataclass
class ListOutcome:
    entity: str
    mark: WindowMark | None = None
    listed: list[str] = field(default_factory=list)  # every id the window showed
    ids: list[str] = field(default_factory=list)  # those the published warehouse does not hold
    safe_s: float | None = None
    gap: Gap | None = None
    error: str | None = None
    fatal: bool = False


@dataclass
class PollReport:
    mode: str
    polled_at: str
    requests: int
    lists: dict[str, ListOutcome]
    queued: dict[str, int]
    interval_s: float
    reason: str
    held_note: str = ""

    @property
    def gaps(self) -> list[Gap]:
        return [o.gap for o in self.lists.values() if o.gap is not None]

    @property
    def errors(self) -> dict[str, str]:
        return {e: o.error for e, o in self.lists.items() if o.error}

    @property
    def fatal(self) -> str | None:
        return next((o.error for o in self.lists.values() if o.fatal), None)

    @property
    def outcome(self) -> str:
        failed = len(self.errors)
        return "ok" if not failed else "failed" if failed == len(self.lists) else "partial"

    def lines(self) -> list[str]:
        if self.outcome == "failed":
            errors = list(dict.fromkeys(self.errors.values()))
            head = f"watch {self.mode}: no list could be read ({self.requests} requests); ids queued earlier stay queued"
            retry = [] if self.fatal else [f"next poll in {format_interval(self.interval_s)}"]
            return [head, *(f"  {e}" for e in errors), *retry]
        queued = sum(self.queued.values())
        per = ", ".join(f"{e}={n}" for e, n in self.queued.items() if n)
        out = [f"watch {self.mode}: {self.requests} requests, {queued} new ids queued" + (f" ({per})" if per else "")]
        for entity, outcome in self.lists.items():
            if outcome.gap is not None:
                gap = outcome.gap
                before = format_interval(gap.interval_before_s) if gap.interval_before_s else "?"
                out.append(
                    f"  {entity}: the window turned over since the last poll: {gap.missed} records missed "
                    f"(total_count {gap.total_before} -> {gap.total_now}, {gap.listed} listed); "
                    f"interval {before} -> {format_interval(self.interval_s)}"
                )
        for entity, error in self.errors.items():
            out.append(f"  {entity}: not read ({error}); what the other lists showed is queued")
        if self.held_note:
            out.append(f"  {self.held_note}")
        out.append(f"next poll in {format_interval(self.interval_s)} ({self.reason})")
        return out


def _held(data_dir: Path, mode: str, entity: str) -> tuple[set[str], str]:
    """Ids the published warehouse holds; if it cannot be read, none (the inbox still dedupes)."""
    try:
        return PublishedWarehouse(mode, data_dir).held_ids(entity), ""
    except WarehouseError as exc:
        return set(), f"published warehouse not readable ({str(exc).splitlines()[0][:120]}): listed ids queued as new"


async def poll_once(
    client: JofiClient, data_dir: Path, *, interval_s: float | None = None, now: Callable[[], datetime] | None = None
) -> PollReport:
    """Read the three windows, queue what is not held, record marks, gaps and the next interval.

    `interval_s` is the operator's interval (`--interval`); None lets the turnover decide.
    """
    mode = client.mode
    identity.guard_folder(ModePaths(data_dir, mode))  # never queue into another mode's folder
    polled_at = (now or (lambda: datetime.now(UTC)))().isoformat()
    sent_before = client.requests_total
    # The capped lists, first page only (client_config): a watcher poll is three requests, not six.
    results = await asyncio.gather(*(client.list(entity) for entity in CAPPED_LISTS), return_exceptions=True)
    requests = client.requests_total - sent_before
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, JofiApiError):
            raise result

    with Inbox.open(ModePaths(data_dir, mode).inbox) as inbox:
        watch_log = WatchLog(inbox)
        previous = watch_log.windows()
        last_good = watch_log.last_poll(good=True)
        current = interval_s or (last_good.interval_s if last_good else None)
        outcomes: dict[str, ListOutcome] = {}
        notes = set()
        for entity, result in zip(CAPPED_LISTS, results, strict=True):
            outcome = outcomes[entity] = ListOutcome(entity)
            if isinstance(result, JofiApiError):
                outcome.error, outcome.fatal = str(result), result.fatal
                continue
            mark = outcome.mark = mark_of(entity, result, polled_at)
            before = previous.get(entity)
            outcome.safe_s = safe_interval_s(before, mark)
            held, note = _held(data_dir, mode, entity)
            notes.add(note)
            outcome.listed = listed_ids(entity, result)
            outcome.ids = [i for i in outcome.listed if i not in held]
            missed = missed_between(before, mark, outcome.listed) if before else 0
            if missed:
                elapsed = seconds_between(before.polled_at, polled_at)  # the interval that proved too long
                outcome.gap = Gap(entity, before.polled_at, polled_at, before.total_count or 0, mark.total_count or 0,
                                  mark.listed, missed, elapsed if elapsed > 0 else current, None)

        interval, reason = _next_interval(outcomes, interval_s, current)
        for outcome in outcomes.values():
            if outcome.gap is not None:
                outcome.gap = replace(outcome.gap, interval_after_s=interval)
        report = PollReport(mode, polled_at, requests, outcomes, {}, interval, reason, "; ".join(n for n in notes if n))
        record = PollRecord(polled_at, report.outcome, requests, 0, sum(g.missed for g in report.gaps), interval,
                            "; ".join(f"{e}: {m}" for e, m in report.errors.items()))
        if report.outcome == "failed":
            watch_log.record_failure(record)
            report.queued = {}
        else:
            marks = [o.mark for o in outcomes.values() if o.mark is not None]
            ids = {e: o.ids for e, o in outcomes.items() if o.mark is not None}
            report.queued = watch_log.record_poll(ids, marks, report.gaps, record)
    for line in report.lines():
        log.info(line)
    return report


def _next_interval(outcomes: dict[str, ListOutcome], override_s: float | None, current_s: float | None) -> tuple[float, str]:
    if all(o.mark is None for o in outcomes.values()):
        return min(current_s or FIRST_INTERVAL_S, FIRST_INTERVAL_S), "retrying after a failed poll"
    limits = {e: o.safe_s for e, o in outcomes.items() if o.safe_s}
    safe = clamp(min(limits.values())) if limits else MAX_INTERVAL_S
    safe_text = f"safe for the observed turnover: {format_interval(safe)}"
    gaps = [o.gap for o in outcomes.values() if o.gap is not None]
    if gaps:
        cuts = [
            (g.interval_before_s or safe) * SAFE_SHARE * g.listed / (g.listed + g.missed) for g in gaps
        ]
        return clamp(min(min(cuts), safe, override_s or safe)), f"shortened after a window turned over; {safe_text}"
    if override_s:
        warning = "; longer than safe, records may be missed" if override_s > safe * 1.01 else ""
        return override_s, f"--interval; {safe_text}{warning}"
    return safe, safe_text


# ---- running it --------------------------------------------------------------------------

_INTERVAL = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")


def parse_interval(text: str) -> float:
    """'2h', '90m', '1h30m', '45s' or plain seconds -> seconds (at least MIN_INTERVAL_S)."""
    raw = text.strip().lower()
    match = _INTERVAL.fullmatch(raw)
    if raw.isascii() and raw.isdigit():
        seconds = float(raw)
    elif raw and match and any(match.groups()):
        h, m, s = (int(g or 0) for g in match.groups())
        seconds = float(h * 3600 + m * 60 + s)
    else:
        raise ValueError(f"interval {text!r} not understood: write e.g. 2h, 90m, 1h30m or 300 (seconds)")
    if seconds < MIN_INTERVAL_S:
        raise ValueError(f"interval {text!r} is shorter than {format_interval(MIN_INTERVAL_S)}: be kind to the API")
    return seconds


class WatchFailed(Exception):
    """A poll could not run at all, or hit an error every further poll would hit too (key, mode)."""


async def watch(
    mode: str,
    data_dir: Path,
    *,
    once: bool = False,
    interval_s: float | None = None,
    base_url: str | None = None,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> PollReport:
    """Poll once, or forever at the chosen interval; returns the last report."""
    try:
        client = build_client(mode, base_url)
    except JofiApiError as exc:
        raise WatchFailed(str(exc)) from None
    async with client:
        while True:
            try:
                report = await poll_once(client, data_dir, interval_s=interval_s)
            except IdentityError as exc:
                raise WatchFailed(str(exc)) from None
            for line in report.lines():
                echo(line)
            if report.fatal:
                raise WatchFailed(report.fatal)
            if once:
                return report
            if interval_s and report.gaps:
                interval_s = report.interval_s  # the operator's interval proved too long
            await sleep(report.interval_s)


async def poll_mode(mode: str, data_dir: Path, *, base_url: str | None = None) -> PollReport:
    """One poll with a client of its own (the Dagster sensor's entry point)."""
    async with build_client(mode, base_url) as client:
        return await poll_once(client, data_dir)


def due_in_s(data_dir: Path, mode: str, now: datetime | None = None) -> float:
    """Seconds until the next poll is due by the last poll's interval (0: due now, or never polled)."""
    path = ModePaths(data_dir, mode).inbox
    if not path.exists():
        return 0.0
    with Inbox.open(path, create=False) as inbox:
        last = WatchLog(inbox).last_poll()
    if last is None or not last.interval_s:
        return 0.0
    elapsed = ((now or datetime.now(UTC)) - datetime.fromisoformat(last.polled_at)).total_seconds()
    return max(0.0, last.interval_s - elapsed)
