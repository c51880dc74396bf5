"""One sync run of one mode, in the order that keeps the warehouse correct.

Order matters: the key and the server's `mode` are checked before the store is even opened, so
a wrong key or a server answering for the other mode leaves nothing written. Everything fetched
is merged into the working database in batches as it arrives; only a run that finished publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import duckdb

from jofi_pipeline import collector, entities, settings
from jofi_pipeline.api.client import JofiClient, sendable_query_value
from jofi_pipeline.api.errors import JofiApiError
from jofi_pipeline.api.lists import ListResult
from jofi_pipeline.sync import own_runs, queries, swallowed
from jofi_pipeline.sync.by_id import JOB_FIT_REPORT, SCORECARD, Derived, FanOut
from jofi_pipeline.sync.early_details import EarlyDetails
from jofi_pipeline.sync.targets import InboxWork
from jofi_pipeline.sync.uninterrupted import Outcome, note_steps, to_the_end, wait_for_steps
from jofi_pipeline.sync.options import SyncOptions
from jofi_pipeline.sync.plan import Plan
from jofi_pipeline.sync.attempts import record_attempt, refused
from jofi_pipeline.sync.explain import explain, is_dagster_interruption, leaves
from jofi_pipeline.sync.memory import FetchMemory, without_remembered
from jofi_pipeline.sync.report import Coverage, SyncFailed, SyncReport, capped_window_note, utc_now
from jofi_pipeline.warehouse import (
    CoverageRecord, ModePaths, RunWriter, SyncRunRecord, WarehouseBusyError, WarehouseError, WarehouseStore,
)
from jofi_pipeline.warehouse.attempts import AttemptLog
from jofi_pipeline.warehouse.identity import Identity, api_host
from jofi_pipeline.warehouse.keyset import HeldIds
from jofi_pipeline.warehouse.tables import QUARANTINE_AFTER_RUNS

log = logging.getLogger("jofi_pipeline.sync")

Progress = Callable[[str], None]
BeforePublish = Callable[[], Awaitable[None]]

WRITER_POLL_SECONDS = 2.0
# More per-record failures than this (per entity) means the API is failing, not a few records.
SYSTEMIC_FAILURES_MIN = 10
SYSTEMIC_FAILURES_SHARE = 0.02
# The newest attempts compared with sync_runs as a run opens (_correct_failed_runs): a false
# `succeeded` can only be left by the run before, or by one that also ended before correcting it.
RECENT_ATTEMPTS_CHECKED = 5

def new_run_id(mode: str, started_at: datetime) -> str:
    return f"{mode}-{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


async def run_sync(
    client: JofiClient, store: WarehouseStore, options: SyncOptions | None = None, progress: Progress | None = None,
    *, before_publish: BeforePublish | None = None, run_id: str | None = None,
) -> SyncReport:
    """Sync `client`'s mode into `store`; return the report, or raise SyncFailed with a one-line reason.

    The caller builds the client (the Dagster resource, the CLI through it, a test with a fake
    JOFI) and closes it; this never reads the environment. `before_publish`, once everything is
    fetched and merged, may refuse the publish by raising (the run then fails, nothing published):
    a CLI sync's head start waits there for its Dagster run to have started (head_start.py), and
    gives the run id it chose (`run_id`; else a new one), so its command knows its own record.
    """
    with collector.sync_running():  # fewer walks of the young objects the run makes (collector.py)
        return await _run_sync(client, store, options, progress, before_publish, run_id)


async def _run_sync(
    client: JofiClient, store: WarehouseStore, options: SyncOptions | None, progress: Progress | None,
    before_publish: BeforePublish | None = None, run_id: str | None = None,
) -> SyncReport:
    options = options or SyncOptions()
    mode = client.mode
    say = _progress_sink(mode, progress)
    started_at = utc_now()
    report = SyncReport(run_id=run_id or new_run_id(mode, started_at), mode=mode, started_at=started_at)
    paths = store.paths
    if store.mode != mode:
        raise SyncFailed(
            f"refusing to sync a {mode} client into the {store.mode} warehouse: modes never mix", run_id=report.run_id
        )
    try:
        say(f"checking {urlsplit(client.base_url).netloc or client.base_url} is reachable")
        await client.healthcheck()
        account = await client.get("account")  # the first mode check, before anything is written
    except JofiApiError as exc:
        raise refused(paths, report, exc) from None
    try:
        whose = _identity_of(account, client, report.run_id)
    except SyncFailed as exc:
        raise refused(paths, report, exc) from None

    try:
        writer_cm = await _open_when_free(store, report, whose, options.writer_wait_seconds, say)
    except WarehouseError as exc:
        raise refused(paths, report, exc) from None
    with writer_cm as writer:
        own_runs.note(mode, report.run_id)  # from here on it may publish
        run = _Run(client, writer, options, report, say)
        interruption: BaseException | None = None  # one that came while the publish ran
        publish = Outcome()  # how the publish's thread ended, once it has
        begun = note_steps()  # the merges (and the publish) begun in worker threads, until each ends
        try:
            # Inside the try: a stop or an error here is recorded as the run's end too (it left
            # no sync_runs row, so its command could not say whether it had published).
            _correct_failed_runs(writer, paths, mode, say)  # before this run's publish carries a false row
            writer.stage_publish()  # the copy the publish starts from is made while the run fetches
            if writer.history_started:
                say(f"history starts now from the current rows of {', '.join(writer.history_started)} (this "
                    "warehouse was built before history was kept; earlier changes were not kept)")
            await run.fetch_everything(account)
            if before_publish is not None:
                await before_publish()
            status = run.judge_fetch_failures()
            if run.inbox is not None and status == "succeeded":
                run.inbox.mark_applied(report.run_id)
            run.finish(status)
            say(f"publishing {store.published_db_path}")
            # Once begun, the publish ends (published, or not) before anything else happens: the
            # connection stays open and the lock held under it, and the record says what is true.
            publishing = await to_the_end(writer.publish, outcome=publish)
            interruption = publishing.interruption
            if publishing.error is not None:
                raise publishing.error
            published = publishing.result
            report.publish_seconds = published.seconds
            for problem in published.problems:  # after the switch: published all the same
                say(f"WARNING published, but {problem}")
        except Exception as exc:
            # One line, whatever failed: a group from the side-by-side list reads is opened
            # (explain.py), so the CLI, sync_runs and Dagster say what failed and what to do.
            stop = swallowed.behind(exc)  # Dagster's interruption, if a DuckDB statement raised its own error for it
            wait_for_steps(begun)  # never record through a connection a merge's thread still uses
            run.finish("failed", error=stop or exc)
            record_attempt(paths, report)
            if interruption is not None:
                raise interruption  # the run ends interrupted; the record says why nothing was published
            if stop is not None:
                raise stop from exc  # as if raised where DuckDB ran its handler
            # A refused publish carries every integrity rule as judged (shown as Dagster checks).
            raise SyncFailed(report.error or explain(exc), run_id=report.run_id,
                             findings=getattr(exc, "findings", ())) from exc
        except GeneratorExit:
            # Closed, abandoned by a second interrupt that broke asyncio.run's teardown: the step it
            # awaited has ended (to_the_end waited), and a fan-out's merge, in a task of its own, may
            # still run: wait for every step begun. Record what is true, and let it through.
            wait_for_steps(begun)
            if publish.ended.is_set() and publish.error is None:
                record_attempt(paths, report)  # published: as run.finish(status) recorded it
            else:
                run.finish("failed", error=publish.error or KeyboardInterrupt())
                record_attempt(paths, report)
            raise
        except BaseException as exc:  # cancelled or interrupted before the publish: recorded, then let through
            wait_for_steps(begun)
            run.finish("failed", error=exc)
            record_attempt(paths, report)
            raise
        if interruption is not None:
            say(f"WARNING the sync was interrupted while it published: the publish was let finish, so "
                f"{published.version_dir.name if published.version_dir else 'its new version'} is published; "
                "the run ends interrupted after this")
        if store.remote is not None:  # still under the writer lock: one upload per mode at a time
            if interruption is None:
                say(f"uploading to {store.remote.url}")
                uploading = await to_the_end(writer.upload, published)  # an upload begun ends too
                interruption = uploading.interruption
                if uploading.error is not None:
                    raise uploading.error
                report.remote = uploading.result.remote
            else:
                say(f"WARNING not uploaded to {store.remote.url}: the sync was interrupted first; "
                    f"`{settings.CLI} publish-remote --mode {mode}` uploads the published version")
    if report.status == "partial":
        say(f"WARNING published, but {report.error}")
    if report.quarantined:
        say("WARNING quarantined this run (no longer asked until their inputs change, or --full): " + "; ".join(
            f"{len(keys)} {entity} (e.g. {', '.join(keys[:3])})" for entity, keys in report.quarantined.items()))
    if report.remote is not None:
        say(report.remote.describe() if report.remote.ok else f"WARNING {report.remote.describe()}")
    if report.drift:
        say(f"WARNING schema drift (raw JSON kept, see sync_runs.drift): {report.drift_summary()}")
    if report.gaps:
        say(capped_window_note(report.mode, [(c.entity, c.rows_held, c.api_total_count or 0) for c in report.gaps]))
    say(f"fetch and merge {report.seconds:.1f}s ({report.requests_total} requests), publish {report.publish_seconds or 0:.1f}s")
    record_attempt(paths, report)  # published: succeeded or partial, interrupted after it or not
    if interruption is not None:
        raise interruption  # the run still ends interrupted (Dagster, the CLI), after the truth is recorded
    return report


def _correct_failed_runs(writer: RunWriter, paths: ModePaths, mode: str, say: Progress) -> None:
    """A recent run the attempts file says failed is not published as succeeded (RunWriter.correct_failed_runs)."""
    try:
        failed = {a.run_id: a.reason for a in AttemptLog(paths.attempts).recent(mode, RECENT_ATTEMPTS_CHECKED)
                  if a.status == "failed"}
    except WarehouseError as exc:  # only a check: the attempts file says what is wrong with it
        log.warning("%s: %s", mode, exc)
        return
    try:
        corrected = writer.correct_failed_runs(failed)
    except duckdb.Error as exc:  # only a correction: the run goes on (its own writes say if the database fails)
        log.warning("%s: could not correct sync_runs from the attempts file: %s", mode, exc)
        return
    for run_id in corrected:
        say(f"WARNING sync_runs said run {run_id} published, but it failed after writing that (its failure could "
            "not be recorded then); corrected to failed")


def _identity_of(account: Any, client: JofiClient, run_id: str) -> Identity:
    """Whose data this run writes: the mode, the account JOFI answered for the key, the API host."""
    try:
        account_id = int(entities.parse_id("account", account.get("id") if isinstance(account, dict) else None))
    except entities.InvalidIdError as exc:
        raise SyncFailed(f"JOFI answered GET /accounts without a usable account id ({exc}); nothing was written",
                         run_id=run_id) from None
    return Identity(client.mode, account_id, api_host(client.base_url))


async def _open_when_free(
    store: WarehouseStore, report: SyncReport, whose: Identity, wait_seconds: float, say: Progress
) -> RunWriter:
    """Open the mode's writer, waiting up to `wait_seconds` while another sync holds it."""
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            return store.open_run(report.run_id, report.started_at, whose)
        except WarehouseBusyError:
            if time.monotonic() >= deadline:
                raise
            if not told:
                say(f"another {report.mode} sync is writing; waiting up to {wait_seconds:.0f}s for it to finish")
                told = True
            await asyncio.sleep(WRITER_POLL_SECONDS)


@dataclass
class _Run:
    """The state one run threads through its steps."""

    client: JofiClient
    writer: RunWriter
    options: SyncOptions
    report: SyncReport
    say: Progress
    inbox: InboxWork | None = None  # ids from webhooks / imports (sync/targets.py)
    memory: FetchMemory | None = None  # records earlier runs could not fetch (sync/memory.py)
    # One thread at a time on the writer's connection: the list merges and the test takers'
    # details asked for while the lists page (early_details.py) merge side by side.
    turns: threading.Lock = field(default_factory=threading.Lock)
    asked_early: HeldIds | None = None  # test takers asked for by id while the lists paged

    async def fetch_everything(self, account: dict) -> None:
        self.memory = FetchMemory.load(self.writer, self.options.full_refresh)
        # Ids from webhooks, imports and the watcher, or a targeted run's (sync/targets.py).
        self.inbox = InboxWork.take(self.writer.store.paths.inbox, self.options.targets)
        if self.inbox.targeted:
            await self.upsert("account", [account])
            return await self.fetch_targets(self.inbox)

        early = EarlyDetails.begin(self.fan_out(self.memory), self.memory.skip(EarlyDetails.ENTITY))
        try:
            lists, score_profiles, in_window = await self.read_lists(account, early)
            await early.finish()
        except GeneratorExit:  # closed without its loop (a second interrupt): nothing can be awaited
            early.abandon_now()
            raise
        except BaseException:
            await early.abandon()
            raise
        self.asked_early = early.asked
        early = None  # its lists of ids go with it
        if self.inbox.total:
            self.say(f"inbox: {self.inbox.total} ids from webhooks / imports / the watcher to fetch by id")
        for entity, ids in self.inbox.to_fetch(in_window).items():
            await self.fetch_by_id(entity, ids)
        if self.options.full_refresh:
            self.say("full refresh: every record and derived object is fetched again")
            for entity, keys in self.memory.retry_on_full().items():  # not found / quarantined ones too
                await self.fetch_by_id(entity, [entities.parse_id(entity, k) for k in keys])

        # Invitations that can still change and are no longer in the window: refresh by id.
        invitations_in_window = in_window["invitations"]
        await self.fetch_planned("invitations", queries.OPEN_INVITATIONS, in_window=invitations_in_window)
        # Test takers that are new, still open, or only known from an invitation or a profile
        # (those without assessments were asked for while the lists paged).
        await self.fetch_planned("test_takers", queries.TEST_TAKERS_NEEDING_DETAIL, asked=self.asked_early)
        # Invitations their (just refreshed) test takers show to be out of date.
        await self.fetch_planned("invitations", queries.INVITATIONS_BEHIND_TEST_TAKERS, in_window=invitations_in_window)
        # No step after this one writes these again: they (a first publish) or their history go into
        # the publish's copy now, while the rest is fetched (RunWriter.settled), and so on below.
        self.writer.settled(["account", *(e for e in entities.LISTS if e != "career_navigation_profiles")])
        # Profiles referenced but not held (all known profiles on a full refresh).
        await self.fetch_planned("career_navigation_profiles", queries.PROFILES_NEEDED,
                                 in_window=in_window["career_navigation_profiles"])
        self.writer.settled(["career_navigation_profiles"])
        await self.fetch_derived(score_profiles)

        for entity in entities.CAPPED_LISTS + entities.WHOLE_LISTS:
            result = lists[entity]
            self.report.coverage.append(
                Coverage(entity, result.total_count, self.writer.rows_held(entity), result.has_more, result.capped)
            )

    async def read_lists(self, account: dict, early: EarlyDetails) -> tuple[dict[str, ListResult], list[str], dict[str, HeldIds]]:
        """Read every list while the account merges, merging each list's items as its pages
        arrive; return what the rest of the run needs of them: each list's counts (no items), the
        scorecard profiles and the ids in the window.

        The account merges while the lists' first pages are read (they wait in the queue): the
        first merge of a fresh process (a CLI sync) costs ~0.15 s, which the reads used to wait for.

        The lists are read side by side (a paged list still pages in order) and merged one batch at
        a time through the single writer, each list in the same batches as if read whole. Only a
        few pages and a batch per list are held, not every list whole: at 10,000 test takers the
        ~28,000 items held at once set the interpreter's memory high-water for the rest of the run.
        A list's last (short) batch merges as soon as that list is whole, while the longer lists
        still page: merged only once every list was read, the short lists' merges waited on the
        longest list and then ran one after the other before the by-id work could start.

        `early` is handed each test takers page as it arrives, and asks for their details at once
        (early_details.py), once the score profiles list is whole and the backfill's profiles are
        checked (so a mistyped one fails having asked for nothing by id).
        """
        self.say("reading lists")
        # (list, a page of items) as pages arrive; (list, None) once that list is whole; None at the end.
        # Room for every list's first page and end: the first merge of a process that has not loaded
        # pandas imports it (~0.2 s, pyarrow's shim), and a smaller queue held the second pages back.
        pages: asyncio.Queue[tuple[str, list | None] | None] = asyncio.Queue(maxsize=2 * len(entities.LISTS))
        merged = _ListMerge(self, {entity: [] for entity in entities.LISTS}, early)

        async def read_one(entity: str) -> ListResult:
            result = await self.client.list(entity, on_page=partial(_read_page, merged, pages, entity))
            merged.whole(entity)
            await pages.put((entity, None))
            return result

        # Set once nothing takes pages any more (a merge failed, the run was stopped): the queue
        # may be full then, and the reads' last put would wait for good.
        stopped = asyncio.Event()

        async def read_all() -> dict[str, ListResult]:
            try:
                # A TaskGroup, so one list failing cancels the others before the client closes.
                async with asyncio.TaskGroup() as reads:
                    tasks = {entity: reads.create_task(read_one(entity)) for entity in entities.LISTS}
            finally:
                if not stopped.is_set():
                    await pages.put(None)
            return {entity: task.result() for entity, task in tasks.items()}

        reading = asyncio.create_task(read_all())
        closed = False
        try:
            await self.upsert("account", [account])
            while (page := await pages.get()) is not None:
                early.raise_if_failed()  # a refused key or a stop in its requests ends the run now
                entity, items = page
                await (merged.flush(entity) if items is None else merged.add(entity, items))
            lists = await reading
        except GeneratorExit:  # closed without its loop (a second interrupt): nothing can be awaited
            closed = True
            raise
        except RuntimeError:
            if not reading.get_loop().is_closed():
                raise
            # Closed after its loop closed (a real second interrupt): the pages queue's own clean-up
            # could not cancel its wait ("Event loop is closed"). The close is what happened.
            closed = True
            raise GeneratorExit from None
        except ExceptionGroup as group:  # the first list's own error says what to do, not the group's
            raise group.exceptions[0] from None
        except BaseExceptionGroup as group:  # a stop inside: it goes on as itself, as if raised here
            raise _stop_in(group) from None
        finally:
            if not reading.done():  # the account's or a list's merge failed, or the run was stopped
                stopped.set()
                with contextlib.suppress(RuntimeError):  # a loop closed already
                    reading.cancel()
                if not closed:
                    with contextlib.suppress(BaseException):
                        await reading
        for entity, result in lists.items():  # each merged whole already, as its read ended
            self.say(f"  {entity}: {merged.read[entity]} read, API total {result.total_count}")
        score_profiles = merged.profiles
        # The ids the store kept: those that keep the registry's rule as they are. An item whose id
        # breaks it (digits as text, blanks around a profile's id) was not stored (flatten.py) and
        # the run's drift report counts it; counting it as seen in the window would spare its
        # record the GET by id that refreshes it, and mark an inbox id for it applied. Held as
        # numbers or text in one array each, not as the items' own objects: those kept the freed
        # items' memory arenas alive (keyset.py).
        in_window = {e: HeldIds([i for i in dict.fromkeys(merged.ids[e]) if entities.is_valid_id(e, i)])
                     for e in entities.CAPPED_LISTS}
        return lists, score_profiles, in_window

    async def fetch_targets(self, work: InboxWork) -> None:
        """Targeted run: exactly these records, then the scorecards and job-fit reports whose inputs changed."""
        self.say(f"targeted run: {work.describe()}")
        for entity, ids in work.to_fetch().items():
            await self.fetch_by_id(entity, ids)
        short_names = [r[0] for r in self.writer.query(queries.SCORE_PROFILE_NAMES) if sendable_query_value(r[0])]
        if not short_names:  # a first-ever run that is a targeted one
            profiles = list((await self.client.list("score_profiles")).items)
            await self.upsert("score_profiles", profiles)
            short_names = [p["short_name"] for p in _objects(profiles) if sendable_query_value(p.get("short_name"))]
        # Derived objects through the same incremental plan as a nightly run, so what this run
        # fetches is recorded in fetch_state and not asked for again by the next one.
        await self.fetch_derived(short_names)

    def scorecard_profiles(self, listed: list) -> list[str]:
        """The enabled profiles' short names, narrowed to `options.score_profiles` for a backfill.

        A blank short name cannot be asked for (a scorecard's GET needs one, api/client.py), so its
        scorecards would all fail without a request and stop the publish as if JOFI failed: said
        and left out."""
        named = [sp for sp in _objects(listed) if isinstance(sp.get("short_name"), str)]
        enabled = [sp["short_name"] for sp in named if sendable_query_value(sp["short_name"])]
        if blank := [sp.get("id") for sp in named if not sendable_query_value(sp["short_name"])]:
            self.say(f"WARNING score profile {', '.join(map(str, blank))} has a blank short name: its scorecards "
                     "cannot be asked for and are left out")
        wanted = self.options.score_profiles
        if not wanted:
            return enabled
        unknown = sorted(set(wanted) - set(enabled))
        if unknown:
            raise SyncFailed(
                f"score profile {', '.join(unknown)} is not enabled for this account; enabled: "
                f"{', '.join(enabled) or 'none'}. Check the short name (e.g. JOFI-295-AS) in the score_profiles table.",
                run_id=self.report.run_id,
            )
        self.say(f"scorecards limited to score profile {', '.join(wanted)}")
        return [sp for sp in enabled if sp in wanted]

    async def upsert(self, entity: str, objects: list[dict]) -> None:
        if objects:
            # A merge begun ends before a cancellation goes on (the failed run is recorded through this connection).
            (await to_the_end(self._merge, entity, objects)).value()

    def _merge(self, entity: str, objects: list[dict]) -> None:
        with self.turns:  # counted inside too: a fan-out's merge counts from its own thread
            self.report.add_counts(self.writer.upsert(entity, objects, utc_now()))

    async def fetch_derived(self, score_profiles: list[str]) -> None:
        """Derived objects: only those whose inputs changed since fetch_state says they were fetched."""
        await self.fetch_planned("scorecards", queries.SCORECARDS_WANTED, profiles=score_profiles, derived=SCORECARD)
        self.writer.settled(["scorecards"])
        await self.fetch_planned("job_fit_reports", queries.JOB_FIT_REPORTS_WANTED, derived=JOB_FIT_REPORT)

    async def fetch_planned(
        self,
        entity: str,
        sql: str,
        *,
        in_window: HeldIds | None = None,
        profiles: list[str] | None = None,
        derived: Derived | None = None,
        asked: HeldIds | None = None,
    ) -> None:
        """Plan the GETs with `sql` (see queries.py), then fan them out and stream them in."""
        params = {"full": self.options.full_refresh, "in_window": in_window.tolist() if in_window is not None else [],
                  "profiles": profiles or [], "asked": asked.tolist() if asked is not None else []}
        memory = self.memory or FetchMemory.load(self.writer, self.options.full_refresh)
        if derived is None:
            params["skip"] = memory.skip(entity)
            if params["skip"]:
                self.say(f"  {entity}: {len(params['skip'])} not asked again (not found or quarantined, inputs unchanged)")
        reader = self.writer.reader()
        try:
            with Plan(reader, without_remembered(sql, entity), params) as plan:
                if derived is not None and plan.size:
                    self.say(f"  {entity} wanted: {plan.reasons()}")
                fan = self.fan_out(memory)
                rows = plan.records() if derived is not None else plan
                await fan.fetch(entity, partial(self.client.get, entity), rows, size=plan.size, derived=derived)
        finally:
            reader.close()

    async def fetch_by_id(self, entity: str, keys: Iterable[Any]) -> None:
        """Fan out GETs for keys the caller already has (ids from webhooks or imports), in batches.

        No fetch_state is written: the caller chose these keys, it is not an incremental decision.
        """
        keys = list(keys)
        await self.fan_out(self.memory).fetch(entity, partial(self.client.get, entity), [(k,) for k in keys], size=len(keys))

    def fan_out(self, memory: FetchMemory | None) -> FanOut:
        return FanOut(self.client, self.writer, self.report, self.say, self.options.batch_size, memory, self.turns)

    def judge_fetch_failures(self) -> str:
        """'succeeded', or 'partial' when a few records failed; raise when the failures look systemic.

        One record that JOFI always refuses must not stop every publish forever: below the
        threshold the run publishes what it has, says which records failed, and the next run asks
        for them again (they are not in fetch_state). Above it (the API is failing, not a record),
        nothing is published.
        """
        report = self.report
        if not report.fetch_failures:
            return "succeeded"
        what = report.fetch_failures_text()
        systemic = any(
            n > max(SYSTEMIC_FAILURES_MIN, SYSTEMIC_FAILURES_SHARE * report.fetch_planned.get(entity, n))
            for entity, n in report.fetch_failures.items()
        )
        if systemic:
            raise SyncFailed(
                f"{what} could not be fetched; that many failures looks like an API problem, so the published "
                "warehouse is unchanged (what was fetched is kept) and the next run retries the rest",
                run_id=report.run_id,
            )
        report.error = (
            f"{what} could not be fetched; the runs whose rules next select them ask for them again (the "
            f"next run, for records still active; quarantined after {QUARANTINE_AFTER_RUNS} runs in a row)"
        )
        return "partial"

    def finish(self, status: str, error: BaseException | None = None) -> None:
        """Record the run in sync_runs (committed with the data, published with it on success)."""
        report = self.report
        report.status = status
        if error is not None:
            # Our errors as written for a person (no class name in front); groups opened (explain.py).
            report.error = explain(error)
        report.finished_at = utc_now()
        report.requests = self.client.request_counts()
        try:
            counts = self.writer.record_run(_run_record(report))
            report.inserted, report.updated = counts.inserted, counts.updated
        except Exception:  # the original failure matters more than its bookkeeping
            if error is None:
                raise
            log.exception("could not record the failed sync run")


def _stop_in(group: BaseExceptionGroup) -> BaseException:
    """Dagster's interruption of a terminated run, if a TaskGroup grouped it, else the group.

    Raised as itself, Dagster and `status` know it for what it is, not as "BaseExceptionGroup:
    unhandled errors in a TaskGroup"; it goes before any list's own error, since it is why the
    reads ended (the errors beside it are noted on it). Matched by name (explain.py): any other
    BaseException a TaskGroup groups (KeyboardInterrupt and SystemExit it re-raises bare) stays
    in its group, so e.g. a child's GeneratorExit never reaches the teardown's own handler.
    """
    found = leaves(group)
    stops = [leaf for leaf in found if is_dagster_interruption(leaf)]
    if not stops:
        return group
    others = [leaf for leaf in found if leaf is not stops[0]]
    if others:
        stops[0].add_note("also ended the list reads: " + "; ".join(explain(leaf) for leaf in others))
    return stops[0]


async def _read_page(merged: _ListMerge, pages: asyncio.Queue, entity: str, items: list) -> None:
    merged.seen(entity, items)
    await pages.put((entity, items))


@dataclass
class _ListMerge:
    """A run's list pages, merged per list in batches of the run's batch size as they fill.

    What a page tells the run beyond its rows (the test takers to ask for early, the ids in the
    window, the score profiles) is taken as the page is read (`seen`, `whole`), not when its turn to
    merge comes: the merges queue behind one writer, and the early details need not wait on them.
    """

    run: _Run
    pending: dict[str, list]  # per list, items read and not merged yet (less than a batch)
    early: EarlyDetails  # asks for test takers' details as their pages arrive
    read: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ids: dict[str, list] = field(default_factory=lambda: defaultdict(list))  # capped lists' item ids
    score_profiles: list = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # the scorecards' profiles, once that list is whole

    def seen(self, entity: str, items: list) -> None:
        """A page as it is read."""
        self.read[entity] += len(items)
        if entity == EarlyDetails.ENTITY:
            self.early.offer(items)
        if entity in entities.CAPPED_LISTS:
            self.ids[entity].extend(i.get("id") for i in _objects(items))
        if entity == "score_profiles":
            self.score_profiles.extend(items)

    def whole(self, entity: str) -> None:
        """A list read to its end (its last pages may still wait to merge)."""
        if entity == "score_profiles":
            # Checked as soon as the list is whole, before any GET by id (the test takers' details
            # wait for it): a mistyped backfill profile fails in seconds, having asked for nothing.
            self.profiles = self.run.scorecard_profiles(self.score_profiles)
            self.early.go()

    async def add(self, entity: str, items: list) -> None:
        pending = self.pending[entity]
        pending.extend(items)
        size = self.run.options.batch_size
        while len(pending) >= size:
            batch, pending[:size] = pending[:size], []
            await self.run.upsert(entity, batch)

    async def flush(self, entity: str) -> None:
        batch, self.pending[entity] = self.pending[entity], []
        await self.run.upsert(entity, batch)
        if entity == EarlyDetails.ENTITY:
            self.early.listed()  # every list item of a test taker is merged: its detail may be now


def _objects(items: Iterable[Any]) -> list[dict]:
    """List items that are JSON objects (the store ignores anything else, so must we)."""
    return [item for item in items if isinstance(item, dict)]


def _run_record(report: SyncReport) -> SyncRunRecord:
    return SyncRunRecord(
        run_id=report.run_id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        status=report.status,
        error=report.error,
        requests_total=report.requests_total,
        requests_by_route=dict(report.requests),
        drift=dict(report.drift),
        coverage=tuple(
            CoverageRecord(
                list_route=entities.entity(c.entity).list_route_name, entity=c.entity, api_total_count=c.api_total_count,
                rows_held=c.rows_held, has_more=c.has_more, capped=c.capped, at=report.finished_at,
            )
            for c in report.coverage
        ),
    )


def _progress_sink(mode: str, progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        line = settings.redact_keys(f"{mode}: {message}")
        log.info(line)
        if progress is not None:
            progress(line)

    return say

