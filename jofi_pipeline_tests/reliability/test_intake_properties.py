"""Property-based: the id intake (registry rule, import-ids) and the webhook body parser, against
oracles written here from the documented rules, for inputs nobody thought of."""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from jofi_pipeline import entities
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.app import PATH, build_app
from jofi_pipeline.webhooks.events import MAX_DEPTH, EventError, parse_body
from jofi_pipeline.webhooks.imports import import_ids
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.examples import examples
from jofi_pipeline_tests.webhooks.helpers import SECRET, signature

MAX = 2**63 - 1
PROFILE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def oracle_int(value: object) -> int | None:
    """The documented rule, written independently: an int, or ASCII digits with blanks around."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= MAX else None
    if isinstance(value, str):
        text = value.strip()
        if text and all(c in "0123456789" for c in text):
            return int(text) if 1 <= int(text) <= MAX else None
    return None


def oracle_profile(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if PROFILE.fullmatch(text) and "/" not in text and text not in (".", "..") else None


ID_TEXT = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**65), max_value=2**65).map(str),
    st.sampled_from(["²", "١٢٣", "０１", ".", "..", "../x", "a/b", "%2e%2e", "CNP1", " 12 ", "12\n", "1e3", "0x1f",
                     str(MAX), str(MAX + 1), "-0", "+5", "5_0", "\x00", "\ufeff7", "CP8ABC123HIJ", "A" * 64, "A" * 65]),
)
ANY_ID = st.one_of(ID_TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(), st.floats())


@given(ANY_ID)
@example(2**63)
@example(True)
def test_the_registry_rule_matches_the_documented_rule(value):
    for name in ("test_takers", "career_navigation_profiles"):
        oracle = oracle_int(value) if name == "test_takers" else oracle_profile(value)
        try:
            parsed = entities.parse_id(name, value)
        except entities.InvalidIdError as exc:
            assert oracle is None, (value, exc)
            assert repr(value)[:10] in str(exc) or len(repr(value)) > 40
        else:
            assert parsed == oracle, (value, parsed)
            assert entities.parse_id(name, parsed) == parsed, "a parsed id parses as itself"


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(ID_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=12)), max_size=12))
def test_import_ids_queues_exactly_the_valid_ids_and_counts_every_other_line_invalid(lines):
    rows = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    body = b"id\n" + b"\n".join(rows)  # a CSV with its id column named: every later line is a value
    with tempfile.TemporaryDirectory() as tmp:
        report = import_ids(body, "test-takers", "live", Path(tmp))
        inbox_path = ModePaths(Path(tmp), "live").inbox
        queued = set()
        if inbox_path.exists():
            with Inbox.open(inbox_path, create=False) as inbox:
                queued = {p.object_id for p in inbox.unapplied()}
    expected, invalid = [], 0
    for row in rows:
        try:
            text = row.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
            continue
        cells = next(csv.reader([text]), [])
        if not any(c.strip() for c in cells):
            continue  # a blank line is no value at all
        value = oracle_int(cells[0])
        if value is None:
            invalid += 1
        else:
            expected.append(str(value))
    assert queued == set(expected)
    assert report.new == len(set(expected)) and report.new + report.known == len(expected)
    assert report.invalid == invalid


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
JSON_VALUE = st.recursive(JSON_LEAF, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                          st.dictionaries(st.text(max_size=6), kids, max_size=3)),
                          max_leaves=30)
EVENTS = st.fixed_dictionaries(
    {"id": st.one_of(st.just("evt_1"), st.text(max_size=12)),
     "type": st.sampled_from([*entities.ENTITY_OF_EVENT, "other.thing", "", "A.B"]),
     "data": st.fixed_dictionaries({"object": st.fixed_dictionaries(
         {"id": st.one_of(st.integers(min_value=-5, max_value=2**64), st.sampled_from(["CNP1", "..", ".", "12"]))},
         optional={"mode": st.sampled_from(["live", "test", "TEST", "live ", None]),
                   "livemode": st.sampled_from([True, False, "true", None])})})},
    optional={"mode": st.sampled_from(["live", "test", "Live", 0]), "livemode": st.sampled_from([True, False]),
              "created_at": st.one_of(st.text(max_size=12), st.just("2026-03-02T10:00:00.000Z"))},
)


def check_parse(body: bytes) -> None:
    """Either an Event that keeps every rule, or EventError; nothing else ever."""
    try:
        event = parse_body(body)
    except EventError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    value = json.loads(body)
    assert re.fullmatch(r"evt_[A-Za-z0-9_-]+", event.id) and event.type.isascii()
    for holder in (value, value["data"]["object"]):
        assert holder.get("mode", "live") == "live" and holder.get("livemode", True) is True
    for entity, object_id in event.targets:
        assert entities.is_valid_id(entity, entities.parse_id(entity, object_id))
        assert str(value["data"]["object"]["id"]) == object_id
    for stored in (event.id, event.type, event.created_at or ""):
        assert stored.isascii() and stored.isprintable()  # what is stored next to the body can always be stored


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_an_event_or_a_400(body):
    check_parse(body)


@settings(max_examples=300, deadline=None)
@given(st.one_of(EVENTS, JSON_VALUE))
def test_any_json_is_an_event_that_keeps_the_rules_or_a_400(value):
    check_parse(json.dumps(value).encode())


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=50_000), st.sampled_from(["[", "{\"a\":"]))
def test_any_nesting_past_the_bound_is_a_400(depth, opener):
    closer = "]" if opener == "[" else "}"
    body = ('{"id":"evt_1","type":"x","data":{"object":{"id":1,"n":' + opener * depth + "1" + closer * depth + "}}}")
    try:
        parse_body(body.encode())
    except EventError as exc:
        assert "nests deeper" in str(exc)
    else:
        raise AssertionError("accepted")


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), EVENTS.map(lambda v: json.dumps(v).encode()), JSON_VALUE.map(lambda v: json.dumps(v).encode())))
def test_the_receiver_answers_any_signed_body_200_or_400_and_stores_only_on_200(body):
    """Through the app as served: no body makes it answer 500 (or 503 with a healthy inbox), and
    what it refuses leaves no trace in the inbox."""
    with tempfile.TemporaryDirectory() as tmp, Inbox.open(ModePaths(Path(tmp), "live").inbox) as inbox:
        response = TestClient(build_app(SECRET, inbox)).post(PATH, content=body, headers={"JOFI-Signature": signature(body)})
        assert response.status_code in (200, 400), (response.status_code, response.text)
        stored = inbox.event_count()
    if response.status_code == 200:
        parse_body(body)  # what was stored is what the parser accepts
        assert stored == 1
    else:
        assert stored == 0 and response.json()["error"]
