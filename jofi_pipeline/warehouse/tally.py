"""What one run changed, per table, each row counted once: the numbers every summary shows.

A run writes the same record more than once (a test taker from the list, then from its by-id
GET), so adding up what each write did would call a record the run inserted "updated" too. The
run's writer keeps this tally instead, and `sync_runs`, the CLI summary and the Dagster metadata
all take its counts:

    inserted  rows whose key the warehouse did not hold before this run
    updated   rows it did hold whose content this run changed (a record marked deleted included)

Keys are remembered only for tables with a key per record (entities, fetch_state, the run log):
at most one key per record a run fetched. Child rows (scores, assessments, occupations) are too
many to remember; a child of a record new in this run is new with it, a changed child of an
older record is remembered by key so it counts once. (A child that a run adds, and then changes
again under the same older parent, would count both ways; no API answer does that within a run.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jofi_pipeline.warehouse.keyset import KeySet

Key = tuple[Any, ...]


@dataclass
class RunCounts:
    """One run's totals: table -> rows inserted, table -> rows updated (tables with neither left out)."""

    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)


class RunTally:
    """Keys each table gained or changed in this run, and child rows it gained.

    Notes taken inside `transaction()` are undone when it fails, as the writes they count are.
    """

    def __init__(self) -> None:
        # Held as numbers (keyset.py): ~120,000 keys at 10,000 test takers.
        self._new: dict[str, KeySet] = defaultdict(KeySet)
        self._changed: dict[str, KeySet] = defaultdict(KeySet)
        self._new_children: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._undo = undo = []
        try:
            yield
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        finally:
            self._undo = None

    def is_new(self, table: str, key: Key) -> bool:
        """True when this run inserted the key (so a later write to it is still that insert)."""
        return key in self._new.get(table, ())

    def wrote(self, table: str, *, new: Iterable[Key] = (), existing: Iterable[Key] = ()) -> None:
        """Keys one write inserted (`new`) and keys it rewrote that were already stored (`existing`)."""
        created = self._new[table]
        self._add(created, new)
        existing = list(existing)
        self._add(self._changed[table], [key for key, held in zip(existing, created.contains_each(existing)) if not held])

    def wrote_children(self, table: str, inserted: int, changed: Iterable[Key] = ()) -> None:
        """Child rows one write added, and keys of the older rows it changed."""
        self._new_children[table] += inserted
        if self._undo is not None:
            self._undo.append(lambda: self._new_children.__setitem__(table, self._new_children[table] - inserted))
        self._add(self._changed[table], changed)

    def _add(self, target: KeySet, keys: Iterable[Key]) -> None:
        added = target.update(keys)
        if self._undo is not None and added:
            self._undo.append(lambda: target.remove(added))

    def counts(self) -> RunCounts:
        tables = set(self._new) | set(self._changed) | set(self._new_children)
        counts = RunCounts()
        for table in sorted(tables):
            inserted = len(self._new.get(table, ())) + self._new_children.get(table, 0)
            updated = len(self._changed.get(table, ()))
            if inserted:
                counts.inserted[table] = inserted
            if updated:
                counts.updated[table] = updated
        return counts
