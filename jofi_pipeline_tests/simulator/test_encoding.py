"""The simulator's cheap first answers: orjson bodies, byte for byte what the standard library
wrote, and kept scores, the same numbers as a fresh generator's."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jofi_pipeline.simulator import views
from jofi_pipeline.simulator.api import encode
from jofi_pipeline.simulator.catalog import RIASEC_SCORE_IDS, SCORE_PROFILES, SECTIONS
from jofi_pipeline.simulator.history import build_world


def _standard(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def test_every_record_is_the_bytes_the_standard_library_wrote():
    served = 0
    for kind in ("live", "test"):
        world = build_world(7, 80, kind)
        bodies = [views.invitation(world, i) for i in world.invitations.values()]
        for taker in world.test_takers.values():
            bodies.append(views.test_taker(world, taker))
            bodies += [views.scorecard(world, taker, p) for p in SCORE_PROFILES]
            if taker.career_navigation_profile_id is not None:
                bodies.append(views.job_fit_report(world, taker))
        for body in bodies:
            answer = views.with_mode(kind, body)
            assert encode(answer) == _standard(answer)
            served += 1
    assert served > 500


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_any_value_means_what_the_standard_library_wrote(value):
    """Integers past 64 bits and lone surrogates included: orjson refuses them and the standard
    library answers (or raises) as before."""
    try:
        expected = _standard(value)
    except UnicodeEncodeError:
        try:
            encode(value)
        except UnicodeEncodeError:
            return
        raise AssertionError("encode accepted what the standard library refused") from None
    assert json.loads(encode(value)) == json.loads(expected)


def test_integers_past_64_bits_are_written_whole():
    assert encode({"id": 2**70 + 1}) == b'{"id":1180591620717411303425}'


def _fresh_score(seed: int, kind: str, taker_id: int, score_id: int) -> float:
    rng = random.Random(f"jofi-sim:{seed}:{kind}:score:{taker_id}:{score_id}")
    return round(min(10.0, max(0.0, rng.gauss(5.5, 2.2))), 1)


def test_kept_scores_are_a_fresh_generators_for_each_seed_mode_and_test_taker():
    """Two test takers read through worlds of other seeds and modes: a kept score that forgot any
    of them would answer with the number first kept."""
    score_ids = [d.id for _, definitions in SECTIONS.values() for d in definitions][:6] + list(RIASEC_SCORE_IDS)[:2]
    worlds = [build_world(seed, 20, kind) for seed in (3, 4) for kind in ("live", "test")]
    takers = list(worlds[0].test_takers.values())[:2]
    for _ in range(2):  # the second pass reads what the first one kept
        for world in worlds:
            for taker in takers:
                for score_id in score_ids:
                    assert views.raw_score(world, taker, score_id) == _fresh_score(world.seed, world.kind, taker.id, score_id)
    kept = {views.raw_score(w, t, sid) for w in worlds for t in takers for sid in score_ids}
    assert len(kept) > len(score_ids)


def test_model_objects_are_refused_as_before():
    from dataclasses import dataclass
    from datetime import datetime

    @dataclass
    class Record:
        id: int

    for value in (Record(1), datetime(2026, 12, 4)):
        with pytest.raises(TypeError):
            encode({"data": value})
