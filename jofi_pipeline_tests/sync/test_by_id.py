"""FanOut: by-id answers streamed into the warehouse in batches, each with its fetch_state rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest

from jofi_pipeline.api import AuthenticationError
from jofi_pipeline.sync.by_id import JOB_FIT_REPORT, SCORECARD, FanOut
from jofi_pipeline.sync.report import SyncReport
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.records import PLAN_COLUMNS
from jofi_pipeline_tests.sync.fake_jofi import FakeJofi
from jofi_pipeline_tests.warehouse import docs_shapes as docs

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def writer(tmp_path):
    with WarehouseStore(tmp_path, "live").open_run("run-1", NOW) as run:
        yield run


def fetch(fake: FakeJofi, writer, entity: str, rows, *, derived=None, batch_size: int = 500) -> SyncReport:
    report = SyncReport(run_id="run-1", mode="live", started_at=NOW)
    said: list[str] = []

    async def go():
        async with fake.client() as client:
            fan = FanOut(client, writer, report, said.append, batch_size)
            await fan.fetch(entity, partial(client.get, entity), rows, size=len(rows), derived=derived)

    asyncio.run(go())
    return report


def plan_row(test_taker_id: int, short_name: str | None, reason: str = "new") -> dict:
    return dict(zip(PLAN_COLUMNS, (test_taker_id, short_name, "hash", None, reason), strict=True))


def test_records_are_stored_and_a_404_on_a_held_record_marks_it_deleted(writer):
    fake = FakeJofi()
    fake.add_test_taker(101)
    writer.upsert("test_takers", [docs.test_taker(999)], NOW)
    report = fetch(fake, writer, "test_takers", [(101,), (999,)])
    rows = dict(writer.query("SELECT id, _deleted_at IS NOT NULL FROM test_takers"))
    assert rows == {101: False, 999: True}
    assert report.fetch_planned == {"test_takers": 2} and not report.fetch_failures


def test_derived_answers_commit_with_fetch_state_and_a_404_is_remembered_as_not_found(writer):
    fake = FakeJofi()
    fake.add_test_taker(101, profile="CNP1")
    fake.add_test_taker(102)  # no profile: its job-fit report is a 404, "not yet"
    fetch(fake, writer, "job_fit_reports", [plan_row(101, None), plan_row(102, None)], derived=JOB_FIT_REPORT)
    assert writer.query("SELECT test_taker_id FROM job_fit_reports") == [(101,)]
    assert sorted(writer.query("SELECT test_taker_id, outcome FROM fetch_state WHERE kind = 'job_fit_report'")) == [
        (101, "fetched"), (102, "not_found"),
    ]


def test_a_failing_record_is_counted_and_not_remembered(writer):
    fake = FakeJofi()
    fake.add_test_taker(101)
    fake.add_test_taker(102)
    fake.fail["/test-takers/102/scorecard"] = 503
    rows = [plan_row(t, "JOFI-295-AS") for t in (101, 102)]
    report = fetch(fake, writer, "scorecards", rows, derived=SCORECARD)
    assert report.fetch_failures == {"scorecards": 1}
    assert report.fetch_failure_samples["scorecards"] == ["(102, 'JOFI-295-AS') (503)"]
    assert writer.query("SELECT test_taker_id FROM fetch_state") == [(101,)]


def test_every_batch_commits_its_objects_with_their_fetch_state(writer):
    fake = FakeJofi()
    for t in range(1, 8):
        fake.add_test_taker(t)
    rows = [plan_row(t, "JOFI-295-AS") for t in range(1, 8)]
    report = fetch(fake, writer, "scorecards", rows, derived=SCORECARD, batch_size=2)
    assert report.fetch_planned == {"scorecards": 7} and not report.fetch_failures
    assert writer.query("SELECT count(*) FROM scorecards")[0][0] == writer.query("SELECT count(*) FROM fetch_state")[0][0] == 7


def test_a_fatal_error_stops_the_fan_out_and_keeps_what_was_committed(writer):
    fake = FakeJofi()
    for t in range(1, 30):
        fake.add_test_taker(t)
    seen = Counter()

    def refuse_after_ten(request: httpx.Request):
        seen["n"] += 1
        if seen["n"] > 10:
            return httpx.Response(401, json={"error": {"type": "authentication_error", "message": "revoked"}})
        return None

    fake.hook = refuse_after_ten
    with pytest.raises(AuthenticationError):
        fetch(fake, writer, "test_takers", [(t,) for t in range(1, 30)], batch_size=2)
    stored = writer.query("SELECT count(*) FROM test_takers")[0][0]
    assert 0 < stored <= 10, "committed batches stay; nothing after the fatal answer"
    assert seen["n"] < 29, "the batch stopped instead of failing item after item"


def test_batches_halve_towards_the_end_so_the_last_merge_is_small(writer, monkeypatch):
    """The last batch merges after the last answer, with every request slot idle: a fan-out cuts
    a batch once it holds what is still to come, so the tail merges a few records, not a batch."""
    from jofi_pipeline.sync import by_id
    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    monkeypatch.setattr(by_id, "TAIL_BATCH_MIN", 2)
    fake = FakeJofi()
    for t in range(1, 21):
        fake.add_test_taker(t)
    sizes = cuts(monkeypatch)
    report = fetch(fake, writer, "test_takers", [(t,) for t in range(1, 21)], batch_size=500)
    assert sizes == [10, 5, 3, 2]  # each at least what was left, and at least TAIL_BATCH_MIN
    assert report.fetch_planned == {"test_takers": 20} and writer.query("SELECT count(*) FROM test_takers")[0][0] == 20


def test_a_planned_fan_out_cuts_its_last_batches_short_so_its_tail_merges_little(writer, monkeypatch):
    """A by-id fan-out cuts its batches only towards its end (by_id.tail_cut): the first holds
    half of them, each later one what is still to come, down to TAIL_BATCH_MIN."""
    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    fake = FakeJofi()
    for test_taker_id in range(1, 601):
        fake.add_test_taker(test_taker_id, completed=False)
    sizes = cuts(monkeypatch)
    fetch(fake, writer, "test_takers", [(i,) for i in range(1, 601)], batch_size=2000)
    assert sizes == [300, 150, 100, 50]


def cuts(monkeypatch) -> list[int]:
    """The size of each batch as the fan-out cuts it (before a batch still waiting may take it in)."""
    from jofi_pipeline.sync.by_id import PipelinedWrites
    from jofi_pipeline_tests.warehouse.conftest import spy

    sizes: list[int] = []
    spy(monkeypatch, PipelinedWrites, "submit", lambda self, batch, write: sizes.append(len(batch.objects)))
    return sizes


def merges(monkeypatch, *, first_takes: float = 0.0) -> list[list]:
    """The ids each merge of test takers wrote, in order; the first merge held `first_takes` seconds
    (in its worker thread, as a slow merge: the fan-out goes on meanwhile)."""
    import time

    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    written: list[list] = []

    def record(self, entity, objects, *args, **kwargs):
        written.append([o["id"] for o in objects])
        if len(written) == 1:
            time.sleep(first_takes)

    spy(monkeypatch, RunWriter, "upsert", record)
    return written


def test_short_batches_cut_while_a_merge_runs_join_the_one_waiting_and_merge_once(writer, monkeypatch):
    """Answers faster than merges (concurrency 64): the short last batches of a fan-out queued
    behind a long merge, then merged one after the other with every request slot idle. A batch cut
    while the one before it still waits to begin joins it, in order, so the tail merges once."""
    from jofi_pipeline.sync import by_id

    monkeypatch.setattr(by_id, "TAIL_BATCH_MIN", 2)
    fake = FakeJofi()
    for t in range(1, 41):
        fake.add_test_taker(t)
    sizes = cuts(monkeypatch)
    written = merges(monkeypatch, first_takes=0.5)
    report = fetch(fake, writer, "test_takers", [(t,) for t in range(1, 41)], batch_size=500)
    assert sizes == [20, 10, 5, 3, 2], "the fan-out cut its batches as before"
    assert len(written) < len(sizes), f"the batches cut while the first merged joined: {list(map(len, written))}"
    merged = [i for ids in written for i in ids]
    assert sorted(merged) == list(range(1, 41)) and len(set(merged)) == 40, "each record merged once"
    assert all(len(ids) <= 500 for ids in written)
    assert report.fetch_planned == {"test_takers": 40} and not report.fetch_failures
    assert writer.query("SELECT count(*), count(DISTINCT id) FROM test_takers")[0] == (40, 40)


def test_joined_batches_keep_what_each_answer_said_404s_failures_and_records_fetched_after_all(writer, monkeypatch):
    """A joined batch carries every kind of answer of the batches it took in, not only records:
    held records JOFI no longer has (marked deleted), ids never held (remembered as not found),
    failures (remembered as failing, counted) and records an earlier run missed, fetched now (no
    longer remembered). All of them sit in the fan-out's tail, which joins while the first merges."""
    from jofi_pipeline.sync import by_id
    from jofi_pipeline.sync.memory import FetchMemory
    from jofi_pipeline.warehouse.fetch_outcomes import FAILING, NOT_FOUND, Missed

    monkeypatch.setattr(by_id, "TAIL_BATCH_MIN", 2)
    fake = FakeJofi()
    for t in range(1, 31):
        fake.add_test_taker(t, completed=False)
    writer.upsert("test_takers", [docs.test_taker(t) for t in (901, 902)], NOW)  # held; JOFI no longer has them
    writer.remember_missed("test_takers", FAILING, [Missed("29", "", "500 earlier")], NOW)  # missed by an earlier run

    def fail_28(request: httpx.Request):
        return httpx.Response(500, json={"error": "injected"}) if request.url.path.endswith("/test-takers/28") else None

    fake.hook = fail_28
    sizes = cuts(monkeypatch)
    merges(monkeypatch, first_takes=0.5)
    ran: list[int] = []  # each batch written (a batch of 404s and failures alone merges no records)
    real_writer_of = by_id.FanOut._writer_of

    def counted(self, entity, batch):
        write = real_writer_of(self, entity, batch)
        return lambda: (ran.append(len(batch)), write())

    monkeypatch.setattr(by_id.FanOut, "_writer_of", counted)
    report = SyncReport(run_id="run-1", mode="live", started_at=NOW)
    plan = [(t,) for t in range(1, 28)] + [(28,), (29,), (30,), (901,), (902,), (950,), (951,)]

    async def go():
        async with fake.client() as client:
            fan = FanOut(client, writer, report, lambda line: None, 500, FetchMemory.load(writer))
            await fan.fetch("test_takers", partial(client.get, "test_takers"), plan, size=len(plan))

    asyncio.run(go())
    assert len(ran) < len(sizes), (sizes, ran)
    assert sum(ran) == len(plan)  # every answer written once, whatever it said
    deleted = dict(writer.query("SELECT id, _deleted_at IS NOT NULL FROM test_takers WHERE id > 900"))
    assert deleted == {901: True, 902: True}
    remembered = {(r.record_key, r.outcome) for r in writer.remembered("test_takers")}
    assert remembered == {("28", FAILING), ("950", NOT_FOUND), ("951", NOT_FOUND)}  # 29 fetched after all
    assert report.fetch_failures == {"test_takers": 1}
    assert writer.query("SELECT count(*) FROM test_takers WHERE id <= 30")[0][0] == 29


def test_a_batch_waiting_takes_in_no_more_than_a_batch_holds(writer, monkeypatch):
    """Joined batches never hold more than `batch_size` records: the memory a fan-out holds, and
    the size of a merge, stay what they were."""
    fake = FakeJofi()
    for t in range(1, 31):
        fake.add_test_taker(t, completed=False)
    sizes = cuts(monkeypatch)
    written = merges(monkeypatch, first_takes=0.5)
    fetch(fake, writer, "test_takers", [(t,) for t in range(1, 31)], batch_size=6)
    assert sizes == [6, 6, 6, 6, 6]  # each full: none has room for another
    assert [len(ids) for ids in written] == [6, 6, 6, 6, 6]
    merged = [i for ids in written for i in ids]
    assert sorted(merged) == list(range(1, 31)) and len(set(merged)) == 30


def streamed(fake: FakeJofi, writer, gate, ids, *, batch_size: int, then=None) -> SyncReport:
    """A streamed fan-out (KeyStream) of test takers held back by `gate`: what `then(task)` saw."""
    from jofi_pipeline.sync.by_id import KeyStream

    report = SyncReport(run_id="run-1", mode="live", started_at=NOW)

    async def go():
        async with fake.client() as client:
            keys = KeyStream()
            for key in ids:
                keys.put(key)
            fan = FanOut(client, writer, report, lambda line: None, batch_size)
            task = asyncio.create_task(fan.fetch("test_takers", partial(client.get, "test_takers"), keys, size=None,
                                                 not_before=gate))
            await then(task, keys)

    asyncio.run(go())
    return report


def test_a_held_back_fan_out_writes_nothing_until_its_gate_opens_and_nothing_if_given_up(writer, monkeypatch):
    from jofi_pipeline.sync.by_id import WriteGate
    from jofi_pipeline.warehouse import RunWriter
    from jofi_pipeline_tests.warehouse.conftest import spy

    fake = FakeJofi()
    for test_taker_id in range(1, 41):
        fake.add_test_taker(test_taker_id, completed=False)
    sizes: list[int] = []
    spy(monkeypatch, RunWriter, "upsert", lambda self, entity, objects, *args, **kwargs: sizes.append(len(objects)))

    async def open_later(task, keys):
        await asyncio.sleep(0.3)  # every answer is in: two batches wait, the fan-out waits behind them
        assert sizes == [] and not task.done()
        gate.open()
        keys.close()
        await task

    gate = WriteGate()
    report = streamed(fake, writer, gate, range(1, 41), batch_size=10, then=open_later)
    assert sum(sizes) == 40 and report.fetch_planned == {"test_takers": 40}

    async def give_up(task, keys):
        await asyncio.sleep(0.3)
        gate.give_up()
        keys.close()
        with pytest.raises(RuntimeError, match="stopped before these records could be merged"):
            await task

    sizes.clear()
    gate = WriteGate()
    streamed(fake, writer, gate, range(1, 41), batch_size=10, then=give_up)
    assert sizes == []
