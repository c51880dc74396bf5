"""Property: whatever a sequence of runs reads (changes, re-reads, list items and by-id objects
of one record, deletes, reappearances), every key's versions are contiguous, exactly one is
current unless the record is deleted, and the chain is exactly what a small model of the rules
predicts. Store level (no HTTP), one store per example, runs told apart by their run id."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline_tests.examples import examples
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.harness.history_oracle import chain_problems, chains, disagreements

T0 = datetime(2026, 3, 1, tzinfo=UTC)
IDS = (1, 2, 3)

# One read: ("read", id, which email, by_id?) or ("gone", id); a run is a list of reads.
read = st.tuples(st.just("read"), st.sampled_from(IDS), st.integers(0, 2), st.booleans())
gone = st.tuples(st.just("gone"), st.sampled_from(IDS))
runs_strategy = st.lists(st.lists(st.one_of(read, read, read, gone), min_size=1, max_size=5), min_size=1, max_size=5)


@dataclass
class Model:
    """The rules, for one test taker: content = (email, whether a by-id object was ever merged in)."""

    versions: list[list] = field(default_factory=list)  # [content, valid_from, valid_to, change, run]
    by_id_seen: bool = False
    email: int | None = None
    children: list[list] = field(default_factory=list)

    def current(self):
        return self.versions[-1] if self.versions and self.versions[-1][2] is None and self.versions[-1][3] != "delete" else None

    def read(self, email: int, by_id: bool, at: datetime, run: str) -> None:
        self.email, self.by_id_seen = email, self.by_id_seen or by_id
        if by_id and not self.children:  # the child rows come with the first by-id object
            self.children.append(["assignment", at, None, "insert", run])
        content = (email, self.by_id_seen)
        current = self.current()
        if current is not None and current[0] == content:
            return
        if current is not None and current[4] == run:  # the same run completes its version in place
            before = self.versions[-2] if len(self.versions) > 1 else None
            if before is not None and before[3] != "delete" and before[2] == current[1] and before[0] == content:
                self.versions.pop()  # ... and A, B, A within one run is no change at all
                before[2] = None
            else:
                current[0] = content
            return
        came_back = bool(self.versions) and self.versions[-1][3] == "delete"
        if current is not None:
            current[2] = at
        self.versions.append([content, at, None, "insert" if current is None or came_back else "update", run])

    def gone(self, at: datetime) -> None:
        current = self.current()
        if current is not None:
            current[2] = at
            self.versions.append([current[0], at, at, "delete", None])


def taker_object(id: int, email: int, by_id: bool) -> dict:
    address = f"person{email}@example.com"
    if by_id:
        return docs.test_taker(id, email=address, assignments=[docs.assignment(1, 6)])
    return docs.test_taker_list_item(id, email=address)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs_strategy)
@example([[("read", 1, 1, False)], [("read", 1, 0, False), ("read", 1, 1, False)]])  # A, then B and A in one run
@example([[("read", 1, 1, True)], [("read", 1, 0, False), ("read", 1, 1, False)]])  # ... A read in the other shape
@example([[("read", 1, 0, True)], [("gone", 1), ("read", 1, 0, False), ("read", 1, 1, True)], [("gone", 1), ("gone", 1)]])
def test_every_key_has_one_clean_chain_that_the_model_predicts(planned):
    with tempfile.TemporaryDirectory() as tmp:
        store = WarehouseStore(Path(tmp), "live")
        models = {i: Model() for i in IDS}
        tick = 0
        with store.open_run("r0", T0) as writer:
            for n, reads in enumerate(planned):
                writer.run_id = run = f"r{n}"
                for step in reads:
                    tick += 1
                    at = T0 + timedelta(minutes=tick)
                    if step[0] == "read":
                        _, id, email, by_id = step
                        writer.upsert("test_takers", [taker_object(id, email, by_id)], at)
                        models[id].read(email, by_id, at, run)
                    else:
                        writer.mark_deleted("test_takers", [step[1]], at)
                        models[step[1]].gone(at)
            con = writer.con
            assert chain_problems(con) == []
            assert disagreements(con) == []
            seen = chains(con, "test_takers")
            for id, model in models.items():
                got = [
                    [(int(v["email"][6]), "assigned_assessments" in v["_raw"]), v["_valid_from"], v["_valid_to"], v["_change"]]
                    for v in seen.get((id,), [])
                ]
                assert got == [m[:4] for m in model.versions], id
            children = chains(con, "test_taker_assessments")
            for id, model in models.items():
                got = [[v["_valid_from"], v["_valid_to"], v["_change"]] for v in children.get((id, 1), [])]
                assert got == [m[1:4] for m in model.children], id
