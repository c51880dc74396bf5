"""Test takers' details asked for while the lists still page, not after every list is read.

A test taker's list item carries no assessments, so every test taker without them needs a GET
by id (queries.TEST_TAKERS_NEEDING_DETAIL, its first rule). Cursor paging reads a list one page
after another: the lists of 1,000 test takers took ~0.9 s with ~2 requests in flight, while the
other request slots stood idle, and the by-id work only began after that. Here each list page's
test takers that hold no assessments are asked for at once, sharing the client's slots with the
pages; the answers merge only once the test takers list itself is merged (WriteGate), so a
detail never lands before its row's list item. The run's planned step then leaves out what was
asked here (`$asked`), and still asks for everything else its rules select.

Which ids: exactly those the rule "no assessments held" selects, decided from the assessments
held as the run began (the lists never write assessments), minus those the fetch memory says
to leave alone (not found or quarantined, inputs unchanged). Nothing else is asked early.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from jofi_pipeline import entities
from jofi_pipeline.api.errors import JofiApiError
from jofi_pipeline.api.fanout import InFlight
from jofi_pipeline.sync.by_id import FanOut, KeyStream, WriteGate
from jofi_pipeline.warehouse.keyset import HeldIds

# Test takers that hold assessments already: the rule does not select them for lacking detail.
WITH_DETAIL_SQL = "SELECT DISTINCT test_taker_id FROM test_taker_assessments WHERE test_taker_id IS NOT NULL"


class EarlyDetails:
    """The detail fan-out of one run's test takers, fed by the list pages as they arrive."""

    ENTITY = "test_takers"

    def __init__(self, fan: FanOut, with_detail: HeldIds, skip: Iterable[str]) -> None:
        self._fan = fan
        self._with_detail = with_detail
        self._skip = set(skip)
        self._keys = KeyStream()
        self._asked: dict[int | str, None] = {}  # ids handed to the fan-out, in order, each once
        self._gate = WriteGate()
        self._in_flight = InFlight()
        self._task: asyncio.Task | None = None
        self._abandoned = False  # the run stopped: nothing is asked from then on

    @classmethod
    def begin(cls, fan: FanOut, skip: Iterable[str]) -> EarlyDetails:
        """Read what the rule needs before any list merges; ids offered wait for `go`."""
        return cls(fan, HeldIds(r[0] for r in fan.writer.query(WITH_DETAIL_SQL)), skip)

    @property
    def asked(self) -> HeldIds:
        """Every id handed to the fan-out (fetched, not found or failed: asked once this run), held
        as numbers (keyset.py: the answers' own id objects would pin their memory); none if it
        never began (then the planned step asks for them all)."""
        return HeldIds(self._asked if self._task is not None else [])

    def offer(self, items: Iterable[Any]) -> None:
        """A test takers list page: ask for those holding no assessments (each id once)."""
        ids, _ = entities.split_valid(self.ENTITY, (i.get("id") for i in items if isinstance(i, dict)))
        for key in ids:
            if key in self._asked or key in self._with_detail or str(key) in self._skip:
                continue
            if self._keys.put(key):  # not once the stream has ended (a fatal answer): never asked
                self._asked[key] = None

    def go(self) -> None:
        """The run's own checks of the lists passed (the backfill's score profiles): ask from now on."""
        if self._task is None and not self._abandoned:
            fan = self._fan
            fan.say(f"fetching {self.ENTITY} by id as their list pages arrive (those holding no assessments)")
            self._task = asyncio.create_task(fan.fetch(
                self.ENTITY, self._get, self._keys, size=None, not_before=self._gate, in_flight=self._in_flight))

    async def _get(self, key: int | str) -> dict:
        """One GET by id; a fatal answer (a refused key, the other mode) or a stop ends the stream at
        once, so the fan-out meets it now, not when the next page's ids come."""
        try:
            return await self._fan.client.get(self.ENTITY, key)
        except BaseException as exc:
            if not isinstance(exc, JofiApiError) or exc.fatal:  # as the fan-out judges it (FanOut._sort)
                self._keys.close()
                self._gate.give_up(exc)  # the answers held back raise it: the run says why it stopped
            raise

    def listed(self) -> None:
        """The test takers list is read whole and merged: no more ids, and the answers may merge."""
        self._keys.close()
        self._gate.open()

    def raise_if_failed(self) -> None:
        """Raise the fan-out's failure (a fatal answer, an interruption) if it has ended with one,
        so the run stops while the lists still page rather than once they are read."""
        task = self._task
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()

    async def finish(self) -> None:
        """Wait for every answer to be merged; raise the fan-out's own failure, if it had one."""
        if self._task is not None:
            await self._task
            self._fan.say(f"  {self.ENTITY}: {len(self._asked)} asked for by id while the lists paged")

    async def abandon(self) -> None:
        """The run stops: requests in flight are cancelled; answers held back by a shut gate are
        dropped, while batches already past it are written, as a planned fan-out's are; a merge
        already begun ends (the run waits for begun steps before it records)."""
        self._abandoned = True
        self._gate.give_up()
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        elif not task.cancelled():
            task.exception()  # its own failure is not what ends the run: retrieved, not logged as lost

    def abandon_now(self) -> None:
        """As `abandon`, for a run closed without its loop (a second interrupt): nothing can be
        awaited, and the loop may be closed already (then nothing can be scheduled either). A list
        read not yet cancelled may still end after this: its `go` then asks for nothing."""
        self._abandoned = True
        self._in_flight.cancel_now()  # no request left pending (its own clean-up may never run)
        with contextlib.suppress(RuntimeError):  # a closed loop
            self._gate.give_up()
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):
                task.cancel()
        elif task is not None and not task.cancelled():
            task.exception()  # retrieved: the run's own stop is what it reports
