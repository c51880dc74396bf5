"""Simulators a test process keeps after a test is done with them, to hand the next test that asks
for the same start options instead of starting another process.

A simulator start costs ~0.4 s of CPU (an interpreter, its imports, the worlds, the test's admin
client); the suite asked for ~75, many with options an earlier test of the same file had used. A
kept simulator is handed out again only after `POST /_sim/reset` (both worlds rebuilt from the
start options, faults and counts cleared) and only when everything its admin routes show then
(`stats`, `info`, `faults`, `webhooks`) is what they showed right after it started: the next test starts
from the world a new process would serve. One that is not (webhook settings or deliveries left,
start-up faults that a reset clears, a stopped process) is stopped, and a new one started.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jofi_pipeline.simulator.process import SimulatorProcess

KEEP = 2  # idle simulators per test process: the files that ask repeatedly ask for one kind in a row


def admin_view(sim: SimulatorProcess) -> tuple:
    """What the simulator's admin routes show of its state (the worlds by their clock and options)."""
    return (sim.stats(), sim.info(), sim.faults(), sim.webhooks())


class SimulatorPool:
    def __init__(self) -> None:
        self._idle: OrderedDict[str, tuple[SimulatorProcess, tuple]] = OrderedDict()

    @contextmanager
    def lease(self, **options: Any) -> Iterator[SimulatorProcess]:
        """A simulator as `SimulatorProcess(**options)` starts it, kept for the next lease when done."""
        sim, fresh = self.take(**options)
        try:
            yield sim
        finally:
            self.give_back(sim, fresh)

    def take(self, **options: Any) -> tuple[SimulatorProcess, tuple]:
        key = _key(options)
        kept = self._idle.pop(key, None)
        if kept is not None:
            sim, fresh = kept
            if sim.running and _reset(sim) == fresh:
                return sim, fresh
            sim.stop()
        sim = SimulatorProcess(**options).start()
        return sim, admin_view(sim)

    def give_back(self, sim: SimulatorProcess, fresh: tuple) -> None:
        if not sim.running:
            sim.stop()
            return
        key = _key(sim.options)
        if key in self._idle:  # two at once with the same options: keep one
            sim.stop()
            return
        self._idle[key] = (sim, fresh)
        while len(self._idle) > KEEP:
            _, (oldest, _) = self._idle.popitem(last=False)
            oldest.stop()

    def close(self) -> None:
        while self._idle:
            _, (sim, _) = self._idle.popitem()
            sim.stop()


def _key(options: dict[str, Any]) -> str:
    return json.dumps({"port": 0, **options}, sort_keys=True, default=str)


def _reset(sim: SimulatorProcess) -> tuple | None:
    """What the kept simulator shows once reset, or None when it does not answer (stopped, hung):
    the next test then gets a new one instead of the error."""
    try:
        sim.reset()
        sim._call("POST", "/webhooks/stats/reset")
        return admin_view(sim)
    except Exception:  # noqa: BLE001  any failure only means: do not reuse it
        return None

