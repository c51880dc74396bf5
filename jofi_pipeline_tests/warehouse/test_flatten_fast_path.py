"""The row builder's precomputed path (flatten.typed_row, arrow_table) against the per-value path.

typed_row works out each spec's getters, coercers and id rules once and reads top-level fields of
plain dicts directly; these properties hold it to what `typed_value` (one column, one value, no
shortcuts) gives, for every table and for values of every JSON type and some that are not.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import MappingProxyType

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jofi_pipeline.warehouse import flatten
from jofi_pipeline.warehouse.tables import TABLES

SPECS = [spec for spec in TABLES.values() if spec.kind in ("entity", "child")]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["2026-11-30T10:00:00Z", "2026-11-30T10:00:00.123+02:00", "0", "abc"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)


@st.composite
def objects(draw):
    """An object for one spec: a value (of any type) for some of the fields its columns read."""
    spec = draw(st.sampled_from(SPECS))
    fields = {}
    for column in spec.columns:
        path = column.path or (column.name,)
        if draw(st.booleans()):
            value = draw(values)
            for step in reversed(path[1:]):
                value = {step: value}
            fields[path[0]] = value
    as_proxy = draw(st.booleans())  # a Mapping that is not a dict takes the general path
    return spec, (MappingProxyType(fields) if as_proxy else fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects())
def test_typed_row_gives_what_each_column_read_alone_gives(case):
    spec, obj = case
    expected = {column.name: flatten.typed_value(column, obj, spec) for column in spec.columns}
    assert flatten.typed_row(spec, obj) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects(), min_size=0, max_size=6))
def test_arrow_table_equals_a_column_at_a_time_build(cases):
    for spec in {id(spec): spec for spec, _ in cases}.values():
        rows = [flatten.typed_row(spec, obj) for s, obj in cases if s is spec]
        rows = [row if i % 2 else {k: v for k, v in row.items() if v is not None} for i, row in enumerate(rows)]
        schema = pa.schema([pa.field(c.name, flatten.ARROW_TYPES[c.type]) for c in spec.all_columns])
        expected = pa.table({f.name: pa.array([row.get(f.name) for row in rows], type=f.type) for f in schema}, schema=schema)
        assert flatten.arrow_table(spec, rows).equals(expected)


def test_a_bool_is_never_a_bigint_and_a_bigint_stops_at_64_bits():
    assert [flatten.to_bigint(v) for v in (True, False, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 7)] == [
        None, None, 2**63 - 1, None, -(2**63), None, 7]


class _Text(str):
    pass


class _Number(int):
    pass


# Values at the edges of each inline case of row_code.py (bool is an int, int64's ends, floats that
# are not finite, subclasses that take the coercer's way), and of the other JSON types.
EDGES = [None, True, False, 0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1.5, -0.0, math.nan, math.inf, -math.inf,
         "", "x", "7", "2026-11-30T10:00:00Z", _Text("y"), _Number(5), [1, None, "a", True], [], {"a": 1}]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_typed_row_of_a_dict_gives_what_each_column_read_alone_gives_for_edge_values(spec):
    for column in spec.columns:
        path = column.path or (column.name,)
        for value in EDGES:
            for step in reversed(path[1:]):
                value = {step: value}
            obj = {path[0]: value}
            expected = {c.name: flatten.typed_value(c, obj, spec) for c in spec.columns}
            assert flatten.typed_row(spec, obj) == expected, (column.name, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects())
def test_row_key_is_the_key_columns_unless_a_part_that_may_not_be_null_is(case):
    spec, obj = case
    row = flatten.typed_row(spec, obj)
    parts = tuple(row[name] for name in spec.key)
    missing = any(part is None and name not in spec.nullable_key for name, part in zip(spec.key, parts, strict=True))
    assert flatten.row_key(spec, row) == (None if missing else parts)


def test_a_score_without_a_parent_keeps_its_key_and_one_without_an_id_has_none():
    spec = TABLES["scorecard_scores"]
    row = {"test_taker_id": 7, "score_profile_short_name": "P", "section": "s", "score_id": 3, "parent_score_id": None}
    assert flatten.row_key(spec, row) == (7, "P", "s", 3, None)
    assert flatten.row_key(spec, row | {"score_id": None}) is None


def drift_column_by_column(spec, objs):
    """drift_of's uncoercible counts as first written: every column's raw value coerced alone."""
    counts = {}
    for obj in objs:
        for column in spec.columns:
            raw = column.read(obj)
            value = flatten.coerce(spec, column, raw)
            if isinstance(value, list) and isinstance(raw, list):
                kept = all(v is not None or r is None for v, r in zip(value, raw, strict=True))
            else:
                kept = value is not None
            if raw is not None and not kept:
                counts[column.name] = counts.get(column.name, 0) + 1
    return counts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects(), min_size=1, max_size=5))
def test_drift_counts_what_each_column_coerced_alone_could_not_keep(cases):
    for spec in {id(spec): spec for spec, _ in cases}.values():
        objs = [obj for s, obj in cases if s is spec]
        assert flatten.drift_of(spec, objs).uncoercible == drift_column_by_column(spec, objs)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_drift_counts_what_each_column_coerced_alone_could_not_keep_for_edge_values(spec):
    objs = []
    for column in spec.columns:
        path = column.path or (column.name,)
        for value in EDGES:
            for step in reversed(path[1:]):
                value = {step: value}
            objs.append({path[0]: value})
    assert flatten.drift_of(spec, objs).uncoercible == drift_column_by_column(spec, objs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects())
def test_typed_tuple_is_the_typed_row_s_values_in_column_order(case):
    spec, obj = case
    assert flatten.typed_tuple(spec, obj) == tuple(flatten.typed_row(spec, obj).values())
    assert list(flatten.typed_row(spec, obj)) == [c.name for c in spec.columns]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects(), min_size=0, max_size=6), st.sampled_from(["live", "test", None]))
def test_rows_table_equals_arrow_table_of_the_same_rows_as_dicts(cases, mode):
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    system = {"_mode": mode, "_first_synced_at": at, "_last_synced_at": at}
    extra = {"_action": pa.string(), "_row_hash": pa.string()}
    for spec in {id(spec): spec for spec, _ in cases}.values():
        objs = [obj for s, obj in cases if s is spec]
        given_columns = {"_raw": [str(i) for i in range(len(objs))], "_action": ["insert", "update"] * len(objs)}
        given_columns = {name: values[: len(objs)] for name, values in given_columns.items()}
        dicts = [flatten.typed_row(spec, obj) | system | {n: v[i] for n, v in given_columns.items()} for i, obj in enumerate(objs)]
        tuples = [flatten.typed_tuple(spec, obj) for obj in objs]
        assert flatten.rows_table(spec, tuples, system, given=given_columns, extra=extra).equals(flatten.arrow_table(spec, dicts, extra=extra))
