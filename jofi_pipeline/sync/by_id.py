"""Fetch the records of a plan by id, fanned out, and stream the answers into the warehouse in batches.

Two things keep a large fan-out cheap and safe:
- memory follows `batch_size` and the client's concurrency: the plan is read page by page, one
  batch fills while the previous one is merged in a worker thread, nothing else is kept;
- each batch commits together with its `fetch_state` rows, so a crash loses at most the batches
  in flight and the next run does not ask again for what was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jofi_pipeline.api.client import JofiClient
from jofi_pipeline.api.errors import JofiApiError, NotFoundError
from jofi_pipeline.sync.queries import FETCH_KIND
from jofi_pipeline.sync.report import SyncReport, one_line, utc_now
from jofi_pipeline.warehouse import ENTITY_TABLES, FetchRecord, RunWriter
from jofi_pipeline.warehouse.flatten import with_key
from jofi_pipeline.warehouse.records import PLAN_COLUMNS

log = logging.getLogger("jofi_pipeline.sync")

Progress = Callable[[str], None]



@dataclass(frozen=True)
class Derived:
    """A derived object (scorecard, job-fit report): how its plan row maps to its key and fetch_state.

    Plan rows are mappings of PLAN_COLUMNS (sync/queries.py selects them by name); the key is the
    entity table's key (warehouse/tables.py), read from the row by column name.
    """

    entity: str  # 'scorecards' | 'job_fit_reports'

    @property
    def kind(self) -> str:
        return FETCH_KIND[self.entity]  # fetch_state.kind

    def key(self, row: Mapping[str, Any]) -> Any:
        """What the client's `get` takes: a scalar for a one-column key, else a tuple."""
        key = tuple(row[c] for c in ENTITY_TABLES[self.entity].key)
        return key[0] if len(key) == 1 else key

    def keyed(self, obj: dict, row: Mapping[str, Any]) -> Mapping[str, Any]:
        """The object with its key fields as the request named them (see flatten.with_key)."""
        return with_key(ENTITY_TABLES[self.entity], obj, row)

    def record(self, row: Mapping[str, Any], outcome: str) -> FetchRecord:
        return FetchRecord(kind=self.kind, outcome=outcome, fetched_at=utc_now(), **{c: row[c] for c in PLAN_COLUMNS})


SCORECARD = Derived("scorecards")
JOB_FIT_REPORT = Derived("job_fit_reports")


class PipelinedWrites:
    """At most one batch is being merged (in a worker thread) while the next one fills."""

    def __init__(self) -> None:
        self._pending: asyncio.Future | None = None

    async def submit(self, write: Callable[[], Any]) -> None:
        await self.drain()
        self._pending = asyncio.ensure_future(asyncio.to_thread(write))

    async def drain(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending


@dataclass
class _Batch:
    objects: list[dict] = field(default_factory=list)
    fetched: list[FetchRecord] = field(default_factory=list)
    gone: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.objects) + len(self.fetched) + len(self.gone)


@dataclass
class FanOut:
    """One run's fan-outs: the client to ask, the writer to store into, the report to count in."""

    client: JofiClient
    writer: RunWriter
    report: SyncReport
    say: Progress
    batch_size: int

    async def fetch(
        self,
        entity: str,
        fetch: Callable[[Any], Awaitable[dict]],
        plan: Iterable[tuple] | Iterable[Mapping[str, Any]],
        *,
        size: int,
        derived: Derived | None = None,
    ) -> None:
        """GET every planned key; merge the answers in batches as they arrive.

        A 404 on a record we hold marks it deleted (never dropped); a 404 on a derived object
        (scorecard, job-fit report) only means there is nothing yet, and is remembered in
        fetch_state so it is asked again only when its inputs change. A fatal error (auth, mode)
        stops the run at once; other failures are counted (not remembered, so the next run asks
        again) and fail the run after everything else was committed.
        """
        if size == 0:
            return
        self.say(f"fetching {size} {entity} by id")
        self.report.fetch_planned[entity] += size
        key = derived.key if derived else (lambda row: row[0])
        writes = PipelinedWrites()
        batch, done = _Batch(), 0
        try:
            outcomes = self.client.fan_out(lambda row: fetch(key(row)), plan)
            async with contextlib.aclosing(outcomes):
                async for outcome in outcomes:
                    done += 1
                    self._sort(entity, outcome, batch, key, derived)
                    if len(batch) >= self.batch_size:
                        await writes.submit(self._writer_of(entity, batch))
                        batch = _Batch()
                        self.say(f"  {entity}: {done}/{size}")
            await writes.submit(self._writer_of(entity, batch))
        except BaseException:
            # The batch already being written is valid data: let it commit; the first error wins.
            with contextlib.suppress(Exception):
                await writes.drain()
            raise
        await writes.drain()

    def _sort(self, entity: str, outcome, batch: _Batch, key, derived: Derived | None) -> None:
        if outcome.error is None:
            if derived:
                batch.objects.append(derived.keyed(outcome.value, outcome.item))
                batch.fetched.append(derived.record(outcome.item, "fetched"))
            else:
                batch.objects.append(outcome.value)
        elif isinstance(outcome.error, NotFoundError):
            if derived:
                batch.fetched.append(derived.record(outcome.item, "not_found"))
            else:  # a record we hold that JOFI no longer has (a derived object's 404 is "not yet")
                batch.gone.append(key(outcome.item))
        elif getattr(outcome.error, "fatal", False) or not isinstance(outcome.error, JofiApiError):
            raise outcome.error
        else:
            self.report.add_fetch_failure(entity, key(outcome.item), outcome.error)
            log.warning("%s %r could not be fetched: %s", entity, key(outcome.item), one_line(outcome.error))

    def _writer_of(self, entity: str, batch: _Batch) -> Callable[[], None]:
        """The blocking write of one batch (runs in a worker thread): data + fetch_state together."""

        def write() -> None:
            if batch.objects or batch.fetched:
                with_state = {"fetched": batch.fetched} if batch.fetched else {}
                self.report.add_counts(self.writer.upsert(entity, batch.objects, utc_now(), **with_state))
            if batch.gone:
                self.writer.mark_deleted(entity, batch.gone, utc_now())
                self.say(f"  {entity}: {len(batch.gone)} no longer exist at JOFI (marked deleted)")

        return write

