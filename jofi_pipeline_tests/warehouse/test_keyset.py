"""KeySet and HeldIds: a run's keys and ids held as numbers, with a set's answers exactly."""

from __future__ import annotations

import random

import pytest

from jofi_pipeline.warehouse.keyset import HeldIds, KeySet

BIG = 2**63 - 1  # the largest id a BIGINT holds


def some_keys(rng: random.Random) -> list[tuple]:
    """Every key shape a run writes: one id, id and text, text then id then text-or-null, text only,
    and an id past 64 bits (held as it is)."""
    return [rng.choice([
        (rng.randint(1, 200),),
        (rng.randint(1, 200), rng.choice(["JOFI-295-AS", "JOFI-300"])),
        (rng.choice(["scorecard", "job_fit_report"]), rng.randint(1, 200), rng.choice(["JOFI-295-AS", None])),
        (f"CNP{rng.randint(1, 40)}",),
        (rng.choice([-(2**63), BIG]),),
        (2**64 + rng.randint(0, 3), "x"),
    ]) for _ in range(rng.randint(0, 40))]


@pytest.mark.parametrize("seed", range(8))
def test_a_keyset_answers_as_a_set_of_the_same_keys(seed):
    rng = random.Random(seed)
    held, expected = KeySet(), set()
    for _ in range(150):
        keys = some_keys(rng)
        step = rng.random()
        if step < 0.4:
            added = list(held.update(keys))
            assert len(added) == len(set(added)) and set(added) == set(keys) - expected
            expected |= set(keys)
        elif step < 0.8:
            assert held.add_each(keys) == [key in expected for key in keys]
            expected |= set(keys)
        elif step < 0.9:
            added = held.update(keys)
            held.remove(added)  # a rolled-back write takes back exactly what it added
            assert set(held) == expected
        else:
            held.difference_update(keys)
            expected -= set(keys)
        probes = keys + some_keys(rng)
        assert held.contains_each(probes) == [key in expected for key in probes]
        assert [key in held for key in probes] == [key in expected for key in probes]
        assert len(held) == len(expected) and set(held) == expected


def test_a_keyset_keeps_numbers_not_the_keys_it_was_given():
    held = KeySet()
    keys = [(100_000 + i, "JOFI-295-AS") for i in range(1000)]
    held.update(keys)
    assert not held._other and sum(a.nbytes for a in held._numbers.values()) == 8 * 1000
    assert (100_500, "JOFI-295-AS") in held and (100_500, "JOFI-300") not in held


def test_held_ids_keep_their_order_and_type_and_answer_in():
    ints = HeldIds([100103, 7, 100101])
    assert ints.tolist() == [100103, 7, 100101] and all(type(i) is int for i in ints)
    assert 7 in ints and 8 not in ints and "7" not in ints and 2**70 not in ints and len(ints) == 3
    texts = HeldIds(["CNP2", "CNP10"])
    assert list(texts) == ["CNP2", "CNP10"] and "CNP10" in texts and "CNP1" not in texts and 2 not in texts
    assert list(HeldIds([])) == [] and 1 not in HeldIds([])
    mixed = HeldIds([1, "a", 2**70])  # never from the registry's typed ids, but still a collection
    assert list(mixed) == [1, "a", 2**70] and 2**70 in mixed and "b" not in mixed
