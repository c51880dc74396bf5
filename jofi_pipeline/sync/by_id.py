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
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jofi_pipeline.api.client import JofiClient
from jofi_pipeline import settings
from jofi_pipeline.api.errors import JofiApiError, NotFoundError
from jofi_pipeline.api.fanout import InFlight
from jofi_pipeline.sync.memory import FetchMemory, derived_inputs, record_key
from jofi_pipeline.sync.queries import FETCH_KIND
from jofi_pipeline.sync.explain import describe
from jofi_pipeline.sync.report import SyncReport, utc_now
from jofi_pipeline.sync.uninterrupted import to_the_end
from jofi_pipeline.warehouse import ENTITY_TABLES, FetchRecord, RunWriter
from jofi_pipeline.warehouse.fetch_outcomes import FAILING, NOT_FOUND, Missed
from jofi_pipeline.warehouse.tables import QUARANTINE_AFTER_RUNS
from jofi_pipeline.warehouse.flatten import with_key
from jofi_pipeline.warehouse.records import PLAN_COLUMNS

log = logging.getLogger("jofi_pipeline.sync")

Progress = Callable[[str], None]
MAX_KEYS_SHOWN = 5
# The smallest batch a fan-out cuts early to shorten its tail (see tail_cut).
TAIL_BATCH_MIN = 100



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
    """Batches merge in worker threads, in order and one at a time, while the fan-out goes on.

    Up to `depth` batches wait or merge before `submit` waits for the oldest: a short batch cut
    near the end of a fan-out is queued at once instead of stalling the requests behind a long
    merge. Each batch starts only once the one before it has ended; a fan-out running beside the
    list merges (early_details.py) also takes the run's lock (FanOut.turns), so the run's one
    writer connection is never used by two threads at once.

    A batch submitted while the last one queued has not begun joins it, while the two hold no
    more than `room` records: when answers come faster than they merge (concurrency 64), a
    fan-out's short last batches (tail_cut) queued up behind a long merge and then merged one
    after the other, each paying a merge's fixed cost (~40 ms) with every request slot idle.
    Joined, they merge as one, in the order they came; the waiting batch's own records then commit
    with the rest (a crash loses at most what was queued, as before, now in one batch).
    """

    def __init__(self, depth: int = 2, not_before: WriteGate | None = None, room: int = 0) -> None:
        self._depth = depth
        self._queued: deque[asyncio.Future] = deque()
        self._not_before = not_before
        self._room = room
        self._waiting: _Batch | None = None  # the last batch queued, until its write begins

    async def submit(self, batch: _Batch, write: Callable[[], Any]) -> None:
        """Queue `write` of `batch` (it reads the batch when it begins), or add `batch` to the
        batch still waiting (then `write` is not used)."""
        waiting = self._waiting
        if waiting is not None and len(waiting) + len(batch) <= self._room:
            waiting.extend(batch)
            return
        while len(self._queued) >= self._depth:
            await self._queued.popleft()
        self._waiting = batch
        self._queued.append(asyncio.ensure_future(self._after(self._queued[-1] if self._queued else None, batch, write)))

    async def _after(self, previous: asyncio.Future | None, batch: _Batch, write: Callable[[], Any]) -> None:
        try:
            if previous is not None:
                await previous  # a batch is only written once every earlier one was (and not after one failed)
            elif self._not_before is not None:
                await self._not_before.wait()
        finally:
            if self._waiting is batch:  # begins now (or never): nothing joins it from here on
                self._waiting = None
        (await to_the_end(write)).value()  # a batch begun ends even when the run is cancelled meanwhile

    async def drain(self) -> None:
        """Wait for every queued batch; raise the first failure."""
        queued, self._queued = list(self._queued), deque()
        self._waiting = None
        for outcome in await asyncio.gather(*queued, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome


class WriteGate:
    """Holds a fan-out's merges back until what they build on is merged (or the run gave up).

    The test takers' details fetched while their list still pages (sync/early_details.py) must
    merge after the list's own rows: the fan-out's requests go on meanwhile, and its writes wait
    here (PipelinedWrites' depth bounds what waits). Given up before it opened, none of the
    writes waiting is written (each waits behind the first); given up later, it changes nothing."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._given_up = False
        self._cause: BaseException | None = None

    def open(self) -> None:
        self._open.set()

    def give_up(self, cause: BaseException | None = None) -> None:
        """`cause`: what the writes waiting raise (the fan-out's own fatal answer), so a fan-out
        waiting behind them fails with it, not with the gate's own error."""
        if not self._open.is_set():
            self._given_up, self._cause = True, cause
            self._open.set()

    async def wait(self) -> None:
        await self._open.wait()
        if self._given_up:
            raise self._cause or RuntimeError("the run stopped before these records could be merged")


def close_without_a_loop(generator) -> None:
    """`aclose()` driven by hand, for a coroutine being closed: the fan-out awaits nothing once
    closed (api/fanout.py), so one step ends it; an already finished generator ends at once."""
    closing = generator.aclose()
    try:
        closing.send(None)
    except (StopIteration, RuntimeError):  # closed now, or it was already running or done
        return
    closing.close()  # it wanted to await after all: abandon the attempt


def tail_cut(in_batch: int, remaining: int) -> bool:
    """Cut the batch early when it holds at least what is still to come (and `TAIL_BATCH_MIN`).

    A fan-out's last batch merges after its last answer, with no request in flight: cut batches
    at batch_size only, and the last one of 1,000 test takers or 944 scorecards merged for 0.4 to
    0.9 s with every request slot idle. Halving towards the end leaves a last merge of about
    `TAIL_BATCH_MIN` records, and the merges before it overlap the requests still running.
    """
    return in_batch >= TAIL_BATCH_MIN and in_batch >= remaining


class KeyStream:
    """Keys that arrive while their fan-out already runs (FanOut.fetch with `size=None`): `put`
    each, `close()` once all are in. From then on the total is known, so the fan-out cuts its
    last batches short (tail_cut) as a planned one does."""

    _END = object()

    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self.count = 0  # keys put so far
        self.total: int | None = None  # every key's count, once closed

    def put(self, key: Any) -> bool:
        """False once closed: the key is not taken (nothing will ask for it)."""
        if self.total is not None:
            return False
        self.count += 1
        self._queue.put_nowait(key)
        return True

    def close(self) -> None:
        if self.total is None:
            self.total = self.count
            self._queue.put_nowait(self._END)

    async def __aiter__(self) -> AsyncIterator[tuple]:
        while (key := await self._queue.get()) is not self._END:
            yield (key,)


@dataclass
class _Batch:
    objects: list[dict] = field(default_factory=list)
    fetched: list[FetchRecord] = field(default_factory=list)
    gone: list[Any] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # record keys fetch_outcomes remembered, now fetched
    failed: list[tuple[Any, str | None, BaseException]] = field(default_factory=list)  # (key, inputs, error)

    def __len__(self) -> int:
        return len(self.objects) + len(self.fetched) + len(self.gone) + len(self.failed)

    def extend(self, later: _Batch) -> None:
        """`later`'s records after this batch's own, as if they had come in this batch."""
        self.objects += later.objects
        self.fetched += later.fetched
        self.gone += later.gone
        self.recovered += later.recovered
        self.failed += later.failed


@dataclass
class FanOut:
    """One run's fan-outs: the client to ask, the writer to store into, the report to count in."""

    client: JofiClient
    writer: RunWriter
    report: SyncReport
    say: Progress
    batch_size: int
    memory: FetchMemory | None = None  # what earlier runs could not fetch (sync/memory.py)
    # Taken around every write: the list merges and a fan-out begun while the lists page
    # (sync/early_details.py) share the run's one writer connection, one thread at a time.
    turns: threading.Lock = field(default_factory=threading.Lock)

    async def fetch(
        self,
        entity: str,
        fetch: Callable[[Any], Awaitable[dict]],
        plan: Iterable[tuple] | Iterable[Mapping[str, Any]] | KeyStream,
        *,
        size: int | None,
        derived: Derived | None = None,
        not_before: WriteGate | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        """GET every planned key; merge the answers in batches as they arrive.

        A 404 on a record we hold marks it deleted (never dropped); on a record never held it is
        remembered as not found (fetch_outcomes); on a derived object (scorecard, job-fit report) it
        only means there is nothing yet, remembered in fetch_state. All three are asked again only
        when their inputs change. A fatal error (auth, mode) stops the run at once; other failures
        are remembered as failing and counted (the run publishes as partial, or fails when they
        look systemic) until the record is quarantined (sync/memory.py), which no longer counts.

        `size` None: `plan` is a KeyStream still being fed; `not_before` may hold the merges back
        until the records they build on are merged. `in_flight`: the caller's handle on the requests
        under way (a fan-out in a task of its own, cancelled from outside it).
        """
        if size == 0:
            return
        streamed = plan if size is None else None
        if streamed is None:
            self.say(f"fetching {size} {entity} by id")
            self.report.fetch_planned[entity] += size
        key = derived.key if derived else (lambda row: row[0])
        writes = PipelinedWrites(not_before=not_before, room=self.batch_size)
        batch, done, in_batch = _Batch(), 0, 0
        in_flight = InFlight() if in_flight is None else in_flight
        outcomes = self.client.fan_out(lambda row: fetch(key(row)), plan, in_flight=in_flight)
        try:
            async for outcome in outcomes:
                done += 1
                in_batch += 1
                self._sort(entity, outcome, batch, key, derived)
                total = size if streamed is None else streamed.total  # a stream's, once it is closed
                if len(batch) >= self.batch_size or (total is not None and tail_cut(in_batch, total - done)):
                    await writes.submit(batch, self._writer_of(entity, batch))
                    batch, in_batch = _Batch(), 0
                    self.say(f"  {entity}: {done}/{size}" if streamed is None else f"  {entity}: {done} so far")
            if len(batch):
                await writes.submit(batch, self._writer_of(entity, batch))
        except GeneratorExit:
            # Closed with its loop gone (a second interrupt): nothing can be awaited now, neither the
            # requests' cancellation nor the queued batches. A batch already merging in its thread is
            # waited for by the run (runner.wait_for_steps); one still queued never began.
            in_flight.cancel_now()  # the fan-out's own clean-up may never run (InFlight)
            close_without_a_loop(outcomes)
            raise
        except BaseException:
            await outcomes.aclose()  # the requests still in flight are cancelled at once
            if not_before is not None:
                not_before.give_up()  # batches still held back are dropped, not waited for
            # The batch already being written is valid data: let it commit; the first error wins.
            with contextlib.suppress(Exception):
                await writes.drain()
            raise
        finally:
            if streamed is not None:
                self.report.fetch_planned[entity] += streamed.count
        await writes.drain()

    def _sort(self, entity: str, outcome, batch: _Batch, key, derived: Derived | None) -> None:
        answered = outcome.error is None or isinstance(outcome.error, NotFoundError)
        if answered and self.memory is not None and self.memory.knows(entity, rk := record_key(key(outcome.item))):
            # An answer (the record, or a 404: deleted, not found, or fetch_state's "not yet") ends
            # what was remembered of it failing, from earlier runs or earlier in this one.
            batch.recovered.append(rk)
        if outcome.error is None:
            if derived:
                batch.objects.append(derived.keyed(outcome.value, outcome.item))
                batch.fetched.append(derived.record(outcome.item, "fetched"))
            else:
                batch.objects.append(outcome.value)
        elif isinstance(outcome.error, NotFoundError):
            if derived:
                batch.fetched.append(derived.record(outcome.item, "not_found"))
            else:  # held: JOFI no longer has it; never held: not found (a derived object's 404 is "not yet")
                batch.gone.append(key(outcome.item))
        elif getattr(outcome.error, "fatal", False) or not isinstance(outcome.error, JofiApiError):
            raise outcome.error
        else:
            inputs = derived_inputs(outcome.item) if derived else None
            batch.failed.append((key(outcome.item), inputs, outcome.error))
            log.warning("%s %r could not be fetched: %s", entity, key(outcome.item), describe(outcome.error))

    def _writer_of(self, entity: str, batch: _Batch) -> Callable[[], None]:
        """The blocking write of one batch (runs in a worker thread): data + fetch_state together."""

        def write() -> None:
            with self.turns:
                if batch.objects or batch.fetched:
                    with_state = {"fetched": batch.fetched} if batch.fetched else {}
                    self.report.add_counts(self.writer.upsert(entity, batch.objects, utc_now(), **with_state))
                if batch.recovered:  # before _gone: one never held is then remembered as not found
                    self.writer.forget_missed(entity, batch.recovered)
                    self.report.fetch_recovered(entity, batch.recovered)  # if it failed earlier in this run
                if batch.gone:
                    self._gone(entity, batch.gone)
                if batch.failed:
                    self._failed(entity, batch.failed)

        return write

    def _gone(self, entity: str, keys: list[Any]) -> None:
        """404s: records held are marked deleted; ids never held are remembered as not found."""
        held = self.writer.held_keys(entity, keys)
        if held:
            self.writer.mark_deleted(entity, [k for k in keys if k in held], utc_now())
            self.say(f"  {entity}: {len(held)} no longer exist at JOFI (marked deleted)")
        never = [record_key(k) for k in keys if k not in held]
        if never:
            inputs = self.memory.inputs(entity, never) if self.memory else {}
            missed = [Missed(k, inputs.get(k, ""), "404 not found") for k in never]
            self.writer.remember_missed(entity, NOT_FOUND, missed, utc_now())
            self.say(
                f"  {entity}: {len(never)} not found at JOFI (never held; asked again when what refers to them "
                f"changes): {', '.join(never[:MAX_KEYS_SHOWN])}{', ...' if len(never) > MAX_KEYS_SHOWN else ''}"
            )

    def _failed(self, entity: str, failed: list[tuple[Any, str | None, BaseException]]) -> None:
        """Failures after retries: remembered; counted against the run until the record is quarantined."""
        keys = [record_key(k) for k, _, _ in failed]
        computed = self.memory.inputs(entity, keys) if self.memory and failed[0][1] is None else {}
        missed = [
            Missed(rk, inputs if inputs is not None else computed.get(rk, ""), describe(error))
            for rk, (_, inputs, error) in zip(keys, failed, strict=True)
        ]
        runs = self.writer.remember_missed(entity, FAILING, missed, utc_now())
        quarantined = []
        for rk, (key, _, error) in zip(keys, failed, strict=True):
            if runs.get(rk, 0) >= QUARANTINE_AFTER_RUNS:
                quarantined.append(rk)
                self.report.add_quarantined(entity, key, error)
            else:
                self.report.add_fetch_failure(entity, key, error, rk)
            if self.memory is not None:  # a later ask in this run that brings it in forgets it again
                self.memory.note_failed(entity, rk)
        if quarantined:
            self.say(
                f"  {entity}: {len(quarantined)} quarantined after failing {QUARANTINE_AFTER_RUNS} runs in a row "
                f"(not asked again until their inputs change, or --full; see `{settings.CLI} status`): "
                f"{', '.join(quarantined[:MAX_KEYS_SHOWN])}{', ...' if len(quarantined) > MAX_KEYS_SHOWN else ''}"
            )

