"""A set of table keys held as numbers, not as Python objects: what a large run remembers costs little.

A run remembers the key of every record it wrote (tally.py): ~120,000 at 10,000 test takers. As
tuples they cost ~100 bytes each, and worse, each one (its id came out of a parsed answer) kept the
interpreter's small-object arena of that answer alive after the answer was freed: at 10,000 test
takers the lists alone left ~107 MB of arenas holding ~47 MB of objects.

Keys holding a 64-bit integer (every key but a profile's or the run log's) are kept as that
integer in a sorted NumPy array, one array per distinct rest of the key (the few kinds and score
profile short names); any other key in a plain set. Membership, adding and removing are exact.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

Key = tuple[Any, ...]
_LOW, _HIGH = -(2**63), 2**63 - 1
# (where the integer sits, the other parts): one sorted array of integers per shape.
Shape = tuple[Any, ...]


def _grouped(keys: Iterable[Key]) -> tuple[dict[Shape, list[int]], list[Key]]:
    """The keys' integers per shape (the integer is a key's first 64-bit int), and the other keys.

    Written out for the shapes a run writes (one id; id and text; text, id, text or null), as
    this runs over every key a run writes: a general loop cost several times as much CPU."""
    groups: dict[Shape, list[int]] = defaultdict(list)
    other: list[Key] = []
    for key in keys:
        first = key[0]
        if type(first) is int and _LOW <= first <= _HIGH:
            groups[(0, *key[1:])].append(first)
            continue
        for i in range(1, len(key)):
            part = key[i]
            if type(part) is int and _LOW <= part <= _HIGH:
                groups[(i, *key[:i], *key[i + 1:])].append(part)
                break
        else:
            other.append(key)
    return groups, other


def _joined(shape: Shape, number: int) -> Key:
    i, rest = shape[0], shape[1:]
    return (*rest[:i], number, *rest[i:])


def _held_shape(shape: Shape) -> Shape:
    """The shape as the set keeps it: its text interned, so it pins nothing the answers held."""
    return tuple(sys.intern(part) if type(part) is str else part for part in shape)


def _numbers(numbers: list[int]) -> np.ndarray:
    return np.fromiter(numbers, dtype=np.int64, count=len(numbers))


def _found(held: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """For each number: is it in `held` (sorted)."""
    if not len(held):
        return np.zeros(len(numbers), dtype=bool)
    at = np.minimum(np.searchsorted(held, numbers), len(held) - 1)
    return held[at] == numbers


class Added:
    """What one KeySet.update added (to take back with KeySet.remove); iterates as keys."""

    def __init__(self, other: list[Key], numbers: list[tuple[Shape, np.ndarray]]) -> None:
        self.other, self.numbers = other, numbers

    def __len__(self) -> int:
        return len(self.other) + sum(len(n) for _, n in self.numbers)

    def __iter__(self):
        yield from self.other
        for shape, numbers in self.numbers:
            for number in numbers.tolist():
                yield _joined(shape, number)


class KeySet:
    """Keys (tuples) of one table; see the module's docstring."""

    def __init__(self) -> None:
        self._numbers: dict[Shape, np.ndarray] = {}  # sorted, distinct
        self._other: set[Key] = set()

    def __len__(self) -> int:
        return len(self._other) + sum(len(a) for a in self._numbers.values())

    def __contains__(self, key: Key) -> bool:
        return self.contains_each((key,))[0]

    def __iter__(self):
        yield from Added(list(self._other), list(self._numbers.items()))

    def contains_each(self, keys: Iterable[Key]) -> list[bool]:
        """For each key in order: is it held (one NumPy lookup per shape, not one per key)."""
        keys = keys if isinstance(keys, (list, tuple)) else list(keys)
        groups, other = _grouped(keys)
        if not other and len(groups) == 1:  # every key of one shape: the answers are in order
            (shape, numbers), = groups.items()
            held = self._numbers.get(shape)
            return [False] * len(keys) if held is None else _found(held, _numbers(numbers)).tolist()
        found: dict[Key, bool] = {key: key in self._other for key in other}
        for shape, numbers in groups.items():
            held = self._numbers.get(shape)
            hits = [False] * len(numbers) if held is None else _found(held, _numbers(numbers)).tolist()
            found.update((_joined(shape, n), hit) for n, hit in zip(numbers, hits, strict=True))
        return [found[key] for key in keys]

    def add_each(self, keys: Iterable[Key]) -> list[bool]:
        """Add the keys; for each in order, was it held before (contains_each, then update, at once)."""
        keys = keys if isinstance(keys, (list, tuple)) else list(keys)
        groups, other = _grouped(keys)
        if other or len(groups) != 1:
            before = self.contains_each(keys)
            self.update(keys)
            return before
        (shape, numbers), = groups.items()
        numbers = _numbers(numbers)
        held = self._numbers.get(shape)
        if held is None:
            self._numbers[_held_shape(shape)] = np.unique(numbers)
            return [False] * len(keys)
        before = _found(held, numbers)
        new = np.unique(numbers[~before])
        if len(new):
            self._numbers[shape] = np.insert(held, np.searchsorted(held, new), new)
        return before.tolist()

    def update(self, keys: Iterable[Key]) -> Added:
        """Add the keys; return what was not held before."""
        groups, other = _grouped(keys)
        added_other = [key for key in dict.fromkeys(other) if key not in self._other]
        self._other.update(added_other)
        added_numbers = []
        for shape, numbers in groups.items():
            incoming = np.unique(_numbers(numbers))
            held = self._numbers.get(shape)
            if held is None:
                new = incoming
                self._numbers[_held_shape(shape)] = incoming
            else:
                new = incoming[~_found(held, incoming)]
                if len(new):
                    self._numbers[shape] = np.insert(held, np.searchsorted(held, new), new)
            if len(new):
                added_numbers.append((shape, new))
        return Added(added_other, added_numbers)

    def remove(self, added: Added) -> None:
        """Take back what an update added."""
        self._other.difference_update(added.other)
        for shape, numbers in added.numbers:
            held = self._numbers[shape]
            self._numbers[shape] = held[~_found(numbers, held)]

    def difference_update(self, keys: Iterable[Key]) -> None:
        groups, other = _grouped(keys)
        self.remove(Added(other, [(shape, np.unique(_numbers(numbers))) for shape, numbers in groups.items()
                                  if shape in self._numbers]))


class HeldIds:
    """Ids (all integers, or all text) held as one NumPy array, in the order given; `in` and `list()`.

    For the ids a run keeps from its lists until its fetches are over (~18,000 at 10,000 test
    takers): as the parsed answers' own objects, they kept those answers' arenas alive.
    """

    def __init__(self, ids: Iterable[Any]) -> None:
        ids = list(ids)
        if all(type(i) is int and _LOW <= i <= _HIGH for i in ids):
            self._ids: np.ndarray | list[Any] = np.fromiter(ids, dtype=np.int64, count=len(ids))
            self._type: type | None = int
        elif all(type(i) is str for i in ids):
            self._ids, self._type = np.array(ids, dtype=np.str_), str
        else:
            self._ids, self._type = ids, None
        self._sorted = np.sort(self._ids) if self._type is not None else None

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self):
        return iter(self.tolist())

    def __contains__(self, value: object) -> bool:
        if self._type is None:
            return value in self._ids
        if type(value) is not self._type or (self._type is int and not _LOW <= value <= _HIGH):
            return False
        at = int(np.searchsorted(self._sorted, value))
        return at < len(self._sorted) and self._sorted[at].item() == value

    def tolist(self) -> list[Any]:
        return self._ids.tolist() if self._type is not None else list(self._ids)
