"""json_codec: orjson's speed, the standard library's answers (ids past 2^63, NaN, lone surrogates)."""

from __future__ import annotations

import json

import pytest

from jofi_pipeline import json_codec

CASES = [
    b'{"id": 12345, "name": "Linda", "scores": [1.5, null, true]}',
    b'{"id": 18446744073709551616}',            # past 2^64: orjson refuses, json keeps it exact
    b'{"id": -9223372036854775809}',            # below -2^63
    b'{"score": NaN, "other": Infinity}',       # not JSON, but json accepts it; so must we
    '{"name": "caf\u00e9 \u2603 \U0001f600"}'.encode(),
    b'{"name": "\\ud800"}',                     # a lone surrogate escape
    b'[]',
    b'"text"',
]


@pytest.mark.parametrize("data", CASES)
def test_loads_answers_what_json_answers(data):
    expected = json.loads(data)
    got = json_codec.loads(data)
    assert repr(got) == repr(expected)  # repr: NaN != NaN, but its repr is equal


@pytest.mark.parametrize("data", [b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe"])
def test_loads_refuses_what_is_not_json_with_a_value_error(data):
    with pytest.raises(ValueError):
        json_codec.loads(data)


@pytest.mark.parametrize("data", CASES)
def test_dumps_round_trips_and_writes_compact_unescaped_text(data):
    value = json.loads(data)
    text = json_codec.dumps(value)
    if b"NaN" in data:  # not JSON: written as null
        assert json.loads(text) == {"score": None, "other": None}
    else:
        assert repr(json.loads(text)) == repr(value)
        assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_dumps_keeps_big_ids_exact_and_stringifies_non_string_keys_like_json():
    value = {"id": 2**64 + 7, 3: "three", "n": -(2**63) - 1}
    assert json.loads(json_codec.dumps(value)) == {"id": 2**64 + 7, "3": "three", "n": -(2**63) - 1}
    assert json_codec.dumps({1: True, None: 0}) == json.dumps({1: True, None: 0}, separators=(",", ":"))
