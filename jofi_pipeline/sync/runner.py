"""One sync run of one mode, in the order that keeps the warehouse correct.

Order matters: the key and the server's `mode` are checked before the store is even opened, so
a wrong key or a server answering for the other mode leaves nothing written. Everything fetched
is merged into the working database in batches as it arrives; only a run that finished publishes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from jofi_pipeline.api.client import ClientConfig, JofiClient
from jofi_pipeline.api.errors import JofiApiError, NotFoundError
from jofi_pipeline.api.lists import ListResult
from jofi_pipeline.sync import queries
from jofi_pipeline.sync.options import SyncOptions
from jofi_pipeline.sync.report import Coverage, SyncFailed, SyncReport
from jofi_pipeline.warehouse import CoverageRecord, RunWriter, SyncRunRecord, WarehouseError, WarehouseStore

log = logging.getLogger("jofi_pipeline.sync")

Progress = Callable[[str], None]

# Small lists come back whole; capped lists are the windows we must look beyond.
WHOLE_LISTS = ("users", "teams", "email_templates", "assessments", "score_profiles")
CAPPED_LISTS = ("invitations", "test_takers", "career_navigation_profiles")
LIST_ROUTES = {
    "users": "GET /users", "teams": "GET /teams", "email_templates": "GET /email-templates",
    "assessments": "GET /assessments", "score_profiles": "GET /score-profiles", "invitations": "GET /invitations",
    "test_takers": "GET /test-takers", "career_navigation_profiles": "GET /career-navigation-profiles",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id(mode: str, started_at: datetime) -> str:
    return f"{mode}-{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


async def run_sync(options: SyncOptions, progress: Progress | None = None) -> SyncReport:
    """Sync one mode; return the report, or raise SyncFailed with a one-line reason."""
    say = _progress_sink(options.mode, progress)
    started_at = _now()
    report = SyncReport(run_id=new_run_id(options.mode, started_at), mode=options.mode, started_at=started_at)
    try:
        client = JofiClient(
            os.environ.get(options.api_key_env_var, ""),
            mode=options.mode,
            base_url=options.base_url,
            config=ClientConfig(
                max_concurrency=options.max_concurrency, requests_per_second=options.requests_per_second
            ),
        )
    except JofiApiError as exc:
        raise SyncFailed(str(exc), run_id=report.run_id) from None

    async with client:
        try:
            say(f"checking {urlsplit(options.base_url).netloc or options.base_url} is reachable")
            await client.healthcheck()
            account = await client.account()  # the first mode check, before anything is written
        except JofiApiError as exc:
            raise SyncFailed(str(exc), run_id=report.run_id) from None

        store = WarehouseStore(options.data_dir, options.mode)
        try:
            writer_cm = store.open_run(report.run_id, started_at)
        except WarehouseError as exc:
            raise SyncFailed(str(exc), run_id=report.run_id) from None
        with writer_cm as writer:
            run = _Run(client, writer, options, report, say)
            try:
                await run.fetch_everything(account)
                run.raise_for_fetch_failures()
                run.finish("succeeded")
                say(f"publishing {store.published_db_path}")
                await asyncio.to_thread(writer.publish)
            except BaseException as exc:
                run.finish("failed", error=exc)
                if isinstance(exc, (JofiApiError, WarehouseError)):
                    raise SyncFailed(report.error or str(exc), run_id=report.run_id) from None
                raise
    say(f"done in {report.seconds:.1f}s, {report.requests_total} requests")
    return report


@dataclass
class _Run:
    """The state one run threads through its steps."""

    client: JofiClient
    writer: RunWriter
    options: SyncOptions
    report: SyncReport
    say: Progress

    async def fetch_everything(self, account: dict) -> None:
        await self.upsert("account", [account])

        self.say("reading lists")
        lists: dict[str, ListResult] = {}
        for entity in WHOLE_LISTS + CAPPED_LISTS:
            lists[entity] = result = await getattr(self.client, entity)()
            await self.upsert(entity, list(result.items))
            self.say(f"  {entity}: {len(result.items)} read, API total {result.total_count}")
        in_window = {e: {item.get("id") for item in lists[e].items} for e in CAPPED_LISTS}

        # Invitations that can still change and are no longer in the window: refresh by id.
        open_invitations = [i for i in self.ids(queries.OPEN_INVITATIONS) if i not in in_window["invitations"]]
        await self.fetch_by_id("invitations", self.client.invitation, open_invitations)

        # Test takers that are new, still open, or only known from an invitation or a profile.
        await self.fetch_by_id("test_takers", self.client.test_taker, self.ids(queries.TEST_TAKERS_NEEDING_DETAIL))

        # Profiles referenced but not held (all known profiles on a full refresh).
        profiles = set(self.ids(queries.PROFILES_MISSING))
        if self.options.full_refresh:
            profiles |= set(self.ids(queries.ALL_PROFILES)) - in_window["career_navigation_profiles"]
        await self.fetch_by_id("career_navigation_profiles", self.client.career_navigation_profile, sorted(profiles))

        # Scorecards: every test taker with a completed assessment x every enabled score profile.
        short_names = [sp["short_name"] for sp in lists["score_profiles"].items if sp.get("short_name")]
        pairs = [(tt, sp) for tt in self.ids(queries.TEST_TAKERS_WITH_COMPLETIONS) for sp in short_names]
        await self.fetch_by_id("scorecards", lambda pair: self.client.scorecard(*pair), pairs, deletable=False)

        # Job-fit reports: every test taker with a career navigation profile.
        await self.fetch_by_id(
            "job_fit_reports", self.client.job_fit_report, self.ids(queries.TEST_TAKERS_WITH_PROFILE), deletable=False
        )

        for entity in CAPPED_LISTS + WHOLE_LISTS:
            result = lists[entity]
            self.report.coverage.append(
                Coverage(entity, result.total_count, self.writer.rows_held(entity), result.has_more, result.capped)
            )

    async def upsert(self, entity: str, objects: list[dict]) -> None:
        if objects:
            counts = await asyncio.to_thread(self.writer.upsert, entity, objects, _now())
            self.report.add_counts(counts)

    def ids(self, sql: str) -> list:
        return [row[0] for row in self.writer.query(sql)]

    async def fetch_by_id(
        self, entity: str, fetch: Callable[[Any], Awaitable[dict]], keys: Iterable[Any], *, deletable: bool = True
    ) -> None:
        """Fan out GETs, merging results in batches as they arrive so a crash loses one batch at most.

        A 404 on a record we hold marks it deleted (never dropped); a 404 on a derived object
        (scorecard, job-fit report) only means there is nothing yet. A fatal error (auth, mode)
        stops the run at once; other failures are counted and fail the run after everything else
        was committed.
        """
        keys = list(keys)
        if not keys:
            return
        self.say(f"fetching {len(keys)} {entity} by id")
        batch: list[dict] = []
        gone: list[Any] = []
        done = 0
        async for outcome in self.client.fan_out(fetch, keys):
            done += 1
            if outcome.error is None:
                batch.append(outcome.value)
            elif isinstance(outcome.error, NotFoundError):
                if deletable:
                    gone.append(outcome.item)
            elif getattr(outcome.error, "fatal", False) or not isinstance(outcome.error, JofiApiError):
                raise outcome.error
            else:
                self.report.fetch_failures[entity] += 1
                log.warning("%s %r could not be fetched: %s", entity, outcome.item, _one_line(outcome.error))
            if len(batch) >= self.options.batch_size:
                await self.upsert(entity, batch)
                batch = []
                self.say(f"  {entity}: {done}/{len(keys)}")
        await self.upsert(entity, batch)
        if gone:
            await asyncio.to_thread(self.writer.mark_deleted, entity, gone, _now())
            self.say(f"  {entity}: {len(gone)} no longer exist at JOFI (marked deleted)")

    def raise_for_fetch_failures(self) -> None:
        failures = self.report.fetch_failures
        if failures:
            what = ", ".join(f"{n} {entity}" for entity, n in failures.items())
            raise SyncFailed(
                f"{what} could not be fetched after retries; what was fetched is kept, the published "
                "warehouse is unchanged, and the next run retries the rest",
                run_id=self.report.run_id,
            )

    def finish(self, status: str, error: BaseException | None = None) -> None:
        """Record the run in sync_runs (committed with the data, published with it on success)."""
        report = self.report
        report.status = status
        report.error = _one_line(error) if error is not None else None
        if isinstance(error, SyncFailed):
            report.error = error.reason
        report.finished_at = _now()
        report.requests = self.client.request_counts()
        try:
            self.writer.record_run(_run_record(report))
        except Exception:  # the original failure matters more than its bookkeeping
            if error is None:
                raise
            log.exception("could not record the failed sync run")


def _run_record(report: SyncReport) -> SyncRunRecord:
    return SyncRunRecord(
        run_id=report.run_id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        status=report.status,
        error=report.error,
        rows_inserted=dict(report.inserted),
        rows_updated=dict(report.updated),
        requests_total=report.requests_total,
        requests_by_route=dict(report.requests),
        coverage=tuple(
            CoverageRecord(
                list_route=LIST_ROUTES[c.entity], entity=c.entity, api_total_count=c.api_total_count,
                rows_held=c.rows_held, has_more=c.has_more, capped=c.capped, at=report.finished_at,
            )
            for c in report.coverage
        ),
    )


def _progress_sink(mode: str, progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        line = f"{mode}: {message}"
        log.info(line)
        if progress is not None:
            progress(line)

    return say


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
