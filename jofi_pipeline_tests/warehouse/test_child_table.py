"""flatten.child_table (a batch's child rows straight into Arrow) against the row-by-row way it replaced.

The store used to build each child row as a dict (`child_rows`), merge the system columns into it
and convert the list with `arrow_table`; child_table makes tuples and columns instead. These hold
the two equal: for every child table, items of every JSON type (and Mappings that are not dicts),
repeated keys (the later item wins), keys with a part missing, parents without items.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jofi_pipeline.warehouse import flatten
from jofi_pipeline.warehouse.tables import TABLES

CHILDREN = [spec for spec in TABLES.values() if spec.kind == "child"]
AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SYSTEM = {"_mode": "live", "_first_synced_at": AT, "_last_synced_at": AT}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65), st.floats(allow_nan=True),
    st.sampled_from(["", "a", "b", "2026-11-30T10:00:00Z"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(["id", "x"]), scalars, max_size=2))


def row_by_row(spec, parents, system):
    """What the store did before child_table."""
    rows = [row | system for key, obj in parents for row in flatten.child_rows(spec, obj, key)]
    return flatten.arrow_table(spec, rows)


@st.composite
def batches(draw):
    """A child spec whose items are read from `parent["items"]`, and a few parents listing items whose
    fields (few values each, so keys repeat) are any JSON value."""
    spec = draw(st.sampled_from(CHILDREN))
    spec = dataclasses.replace(spec, items=lambda parent, key: parent["items"])
    parents = []
    for number in range(draw(st.integers(min_value=0, max_value=3))):
        items = []
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            item = {}
            for column in spec.columns:
                path = column.path or (column.name,)
                if draw(st.integers(min_value=0, max_value=4)):  # most fields present
                    value = draw(st.one_of(st.integers(min_value=1, max_value=2), st.sampled_from(["a", "b"]), values))
                    for step in reversed(path[1:]):
                        value = {step: value}
                    item[path[0]] = value
            items.append(MappingProxyType(item) if draw(st.integers(min_value=0, max_value=5)) == 0 else item)
        parents.append(((number,), {"items": items}))
    return spec, parents


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_child_table_equals_the_rows_built_one_by_one(case):
    spec, parents = case
    assert flatten.child_table(spec, parents, SYSTEM).equals(row_by_row(spec, parents, SYSTEM))


SCORECARD = {
    "scores": {
        "thinking_skills": [
            {"id": 1, "display_name": "Overall", "short_name": "think", "is_starred": True, "test_taker_score": 7.5,
             "facets": [{"id": 11, "display_name": "Reading", "short_name": "think-read"}, {"id": 11, "short_name": "again"},
                        {"display_name": "no id"}, "not an object"]},
            {"id": 2, "display_name": None, "yellow_band": 2**63},
        ],
        "personality_traits": None,
        "career_interests": [{"id": 1, "facets": None}, {"id": 3, "is_starred": "yes"}],
    }
}


@pytest.mark.parametrize("spec", CHILDREN, ids=lambda spec: spec.name)
def test_child_table_of_real_parents_equals_the_rows_built_one_by_one(spec):
    parent_key = (5, "P") if len(spec.parent_columns) == 2 else (5,)
    parent = {
        "assigned_assessments": [{"id": 6, "status": "completed"}, {"id": 6, "status": "started"}, {"status": "x"}],
        "zones": [{"zone": 1, "occupations": [{"onet_code": "1-2", "title": "A"}, {"onet_code": "1-2"}]}, {"zone": None}],
        **SCORECARD,
    }
    parents = [(parent_key, parent), ((parent_key[0] + 1, *parent_key[1:]), {})]
    table = flatten.child_table(spec, parents, SYSTEM)
    assert table.num_rows > 0
    assert table.equals(row_by_row(spec, parents, SYSTEM))


def test_child_table_without_rows_has_the_table_s_columns():
    spec = TABLES["scorecard_scores"]
    table = flatten.child_table(spec, [], SYSTEM)
    assert table.num_rows == 0 and table.schema.names == list(spec.column_names)
    assert table.equals(flatten.arrow_table(spec, []))
