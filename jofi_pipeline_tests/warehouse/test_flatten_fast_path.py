"""The row builder's precomputed path (flatten.typed_row, arrow_table) against the per-value path.

typed_row works out each spec's getters, coercers and id rules once and reads top-level fields of
plain dicts directly; these properties hold it to what `typed_value` (one column, one value, no
shortcuts) gives, for every table and for values of every JSON type and some that are not.
"""

from __future__ import annotations

from types import MappingProxyType

import pyarrow as pa
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
