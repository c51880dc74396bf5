"""JSON objects -> typed rows -> Arrow tables, driven by the specs in tables.py.

Lenient by design: a value of the wrong type (or an unparseable timestamp) becomes null in its
typed column while the raw JSON keeps the original, so one odd value never fails a batch.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from jofi_pipeline import json_codec
from jofi_pipeline.entities import ENTITIES, ID_REFERENCES, is_valid_id
from jofi_pipeline.warehouse import row_code
from jofi_pipeline.warehouse.records import SchemaDrift
from jofi_pipeline.warehouse.tables import ENTITY_TABLES, TABLES, Column, SqlType, TableSpec, children_of

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Top-level fields that describe the response rather than the record; ignored when deciding
# whether a record changed (a list item and a by-id object differ only in `object`).
ENVELOPE_FIELDS = frozenset({"mode", "object"})


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 with 0-6 fractional digits and `Z` or an offset -> aware UTC datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # JOFI always sends an offset; assume UTC if not
    return parsed.astimezone(UTC)


def to_bigint(value: Any) -> int | None:
    if type(value) is int:  # the common case first (bool is an int too, but not of this exact type)
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def to_double(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def to_varchar(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def to_boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def to_bigint_list(value: Any) -> list[int | None] | None:
    return [to_bigint(item) for item in value] if isinstance(value, list) else None


def to_json(value: Any) -> str | None:
    return None if value is None else dump_json(value)


def dump_json(value: Any) -> str:
    return json_codec.dumps(value)


COERCERS: dict[SqlType, Callable[[Any], Any]] = {
    "BIGINT": to_bigint,
    "DOUBLE": to_double,
    "VARCHAR": to_varchar,
    "BOOLEAN": to_boolean,
    "TIMESTAMPTZ": parse_timestamp,
    "BIGINT[]": to_bigint_list,
    "JSON": to_json,
}

ARROW_TYPES: dict[SqlType, pa.DataType] = {
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "BIGINT[]": pa.list_(pa.int64()),
    "JSON": pa.string(),  # DuckDB casts the text to JSON on insert
}


def arrow_string(value: str) -> pa.StringScalar:
    """`value` as an Arrow string, for a compute function: given a bare str, Arrow would infer its
    type, and Arrow's type inference imports pandas (without_pandas.py)."""
    return pa.scalar(value, pa.string())


def id_rule(spec: TableSpec, column: Column) -> str | None:
    """The registry entity whose id rule the column's values keep: an entity table's own `id`, and
    the columns naming a routed record (entities.ID_REFERENCES). None: no id rule."""
    if column.name == "id" and spec.kind == "entity" and spec.name in ENTITIES:
        return spec.name
    return ID_REFERENCES.get(column.name)


_ID_RULES: dict[tuple[str, str], str | None] = {}


def coerce(spec: TableSpec, column: Column, raw: Any) -> Any:
    """`raw` as the column's type; an id that breaks its entity's rule (0, 2**63, '..') is null."""
    value = COERCERS[column.type](raw)
    if value is None:
        return None
    rule = _rule_of(spec, column)
    return value if rule is None else _kept_id(rule, value)


def _rule_of(spec: TableSpec, column: Column) -> str | None:
    """`id_rule`, worked out once per table and column."""
    where = (spec.name, column.name)
    return _ID_RULES[where] if where in _ID_RULES else _ID_RULES.setdefault(where, id_rule(spec, column))


def _kept_id(rule: str, value: Any) -> Any:
    if type(value) is int:  # to_bigint already refused anything past 2**63-1
        return value if value >= 1 else None
    return value if is_valid_id(rule, value) else None


def typed_value(column: Column, source: Mapping[str, Any], spec: TableSpec | None = None) -> Any:
    raw = column.read(source)
    return coerce(spec, column, raw) if spec is not None else COERCERS[column.type](raw)


# Per column of a spec: (name, top-level field or None, getter, coercer, id rule or None).
_Step = tuple[str, "str | None", Callable[[Mapping[str, Any]], Any], Callable[[Any], Any], "str | None"]
# Per spec: the spec itself (ids can be reused), its steps, and its row function for plain dicts.
_STEPS: dict[int, tuple[TableSpec, tuple[_Step, ...], row_code.RowMaker, row_code.TupleMaker]] = {}


def _compiled(spec: TableSpec) -> tuple[TableSpec, tuple[_Step, ...], row_code.RowMaker, row_code.TupleMaker]:
    """What `typed_row` does per column, worked out once per spec (it runs for every row a sync
    writes: resolving the getter, the coercer and the id rule per value was most of its cost),
    and the same written out as one function for a plain dict (row_code.py), making a dict and,
    for `typed_tuple`, a tuple."""
    entry = _STEPS.get(id(spec))
    if entry is None or entry[0] is not spec:
        steps = []
        for column in spec.columns:
            path = column.path  # None for a computed column
            field = path[0] if path is not None and len(path) == 1 else None
            steps.append((column.name, field, column.reader, COERCERS[column.type], _rule_of(spec, column)))
        types = [c.type for c in spec.columns]
        maker = row_code.row_maker(steps, types, _kept_id)
        tuple_maker = row_code.row_maker(steps, types, _kept_id, as_tuple=True)
        entry = _STEPS[id(spec)] = (spec, tuple(steps), maker, tuple_maker)
    return entry


def typed_row(spec: TableSpec, source: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's data columns (not the system columns) read and coerced from one object.

    An id that breaks its entity's rule is null here (so a key-less object is not stored and no
    plan asks for it) while `_raw` keeps it, and `drift_of` counts it as uncoercible.
    """
    entry = _STEPS.get(id(spec))
    if entry is None or entry[0] is not spec:
        entry = _compiled(spec)
    if type(source) is dict:  # JSON objects: the spec's own function (row_code.py)
        return entry[2](source)
    row = {}
    for name, field, read, convert, rule in entry[1]:
        value = convert(read(source))
        row[name] = value if rule is None or value is None else _kept_id(rule, value)
    return row


def row_key(spec: TableSpec, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The row's key, or None when a required key part is missing or of the wrong type."""
    entry = _KEYS.get(id(spec))
    if entry is None or entry[0] is not spec:
        entry = _KEYS[id(spec)] = (spec, spec.key, tuple(i for i, n in enumerate(spec.key) if n not in spec.nullable_key))
    key = tuple([row[name] for name in entry[1]])
    if None in key:
        for i in entry[2]:
            if key[i] is None:
                return None
    return key


# Per spec: the spec itself, its key's names and the positions of the parts that may not be null.
_KEYS: dict[int, tuple[TableSpec, tuple[str, ...], tuple[int, ...]]] = {}


def object_key(spec: TableSpec, obj: Mapping[str, Any]) -> tuple[Any, ...] | None:
    return row_key(spec, {name: typed_value(spec.column(name), obj, spec) for name in spec.key})


def with_key(spec: TableSpec, obj: Mapping[str, Any], key: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` with its key columns (`spec.key`) set to `key`'s values wherever they differ.

    For derived objects the request is the authority on which object an answer is: without this,
    an answer whose key is missing or of another type would be skipped by the store while
    fetch_state recorded it as fetched. An object already right is returned untouched.
    """
    fixed = obj
    for name in spec.key:
        column = spec.column(name)
        if column.read(fixed) != key[name]:
            if column.path is None:
                raise ValueError(f"{spec.name}.{name} is computed and cannot be set from a key")
            fixed = _set_path(fixed, column.path, key[name])
    return fixed


def _set_path(obj: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, *rest = path
    if not rest:
        return {**obj, head: value}
    inner = obj.get(head)
    return {**obj, head: _set_path(inner if isinstance(inner, Mapping) else {}, tuple(rest), value)}


def content(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The record's own fields: what "changed" is judged on."""
    return {k: v for k, v in obj.items() if k not in ENVELOPE_FIELDS}


def content_hash(obj: Mapping[str, Any]) -> str:
    """md5 of the record's own fields with keys sorted: a history version's `_row_hash`.

    Taken of the stored raw JSON, the shallow merge of every response seen for the key, never of
    one response: a list item carries fewer fields than the by-id object, so hashing what arrived
    would flip between the two shapes on every run. The envelope (`object`, `mode`) is left out
    for the same reason; the sync's own timestamps are not in the raw JSON at all.
    """
    return hashlib.md5(json_codec.dumps_sorted(content(obj)).encode(), usedforsecurity=False).hexdigest()


def has_child_list(spec: TableSpec, parent: Mapping[str, Any]) -> bool:
    """Whether `parent` states its children: the key is present with a list/object or null.

    Absent key -> children unknown, leave them alone. A value of another type is type drift:
    also leave them alone (the raw JSON keeps it).
    """
    assert spec.list_key is not None
    if spec.list_key not in parent:
        return False
    value = parent[spec.list_key]
    return value is None or isinstance(value, (list, Mapping))


def child_rows(spec: TableSpec, parent: Mapping[str, Any], parent_key: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Typed child rows of one parent; items without a usable key are dropped (raw keeps them).

    Later items win when the API repeats a key, so a batch never holds a key twice.
    """
    assert spec.items is not None
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in spec.items(parent, parent_key):
        row = typed_row(spec, item)
        key = row_key(spec, row)
        if key is not None:
            by_key[key] = row
    return list(by_key.values())


def typed_tuple(spec: TableSpec, source: Mapping[str, Any]) -> tuple[Any, ...]:
    """`typed_row`'s values in column order, made by the spec's generated function for a dict
    (a tuple costs less to make than a dict; `rows_table` turns a batch of them into Arrow)."""
    return _tuple_maker(spec)(source) if type(source) is dict else tuple(typed_row(spec, source).values())


def _tuple_maker(spec: TableSpec) -> row_code.TupleMaker:
    """The spec's generated function making a plain dict's typed tuple (`_compiled`'s, made once)."""
    return _compiled(spec)[3]


def rows_table(
    spec: TableSpec, rows: Sequence[tuple[Any, ...]], system: Mapping[str, Any],
    given: Mapping[str, Sequence[Any]] | None = None, extra: Mapping[str, pa.DataType] | None = None,
) -> pa.Table:
    """`typed_tuple` rows as the table `arrow_table` makes of the same rows as dicts with their
    system (and `extra`) columns: each of those from `given` (one value per row) or else from
    `system` (one value for every row, null where it has none).

    A batch turned into columns at once, each constant column one value repeated: a dict per row,
    read back key by key into Arrow, was most of a merge's own Python work."""
    given = given or {}
    count = len(rows)
    columns = zip(*rows, strict=True) if rows else ([] for _ in spec.columns)
    arrays = [pa.array(values, type=ARROW_TYPES[c.type]) for values, c in zip(columns, spec.columns, strict=True)]
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in spec.all_columns]
    fields += [pa.field(name, dtype) for name, dtype in (extra or {}).items()]
    for field in fields[len(arrays):]:
        if field.name in given:
            arrays.append(pa.array(given[field.name], type=field.type))
        else:
            arrays.append(pa.repeat(pa.scalar(system.get(field.name), field.type), count))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def child_table(
    spec: TableSpec, parents: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]], system: Mapping[str, Any]
) -> pa.Table:
    """The `child_rows` of each (key, parent object) in one Arrow table (`arrow_table`'s), the
    system columns set to `system`'s values (null where it has none).

    What `arrow_table` of those rows, each merged with `system`, gives, at about half the cost:
    a full sync writes ~180,000 child rows, and a dict per row (and another for its system
    columns), read back key by key into Arrow, was most of the merge's own Python work. Here each
    row is a tuple (`typed_tuple`) and the batch becomes columns at once (`rows_table`).
    """
    assert spec.items is not None
    names = [c.name for c in spec.columns]
    at = [names.index(n) for n in spec.key]
    required = [i for i, n in zip(at, spec.key, strict=True) if n not in spec.nullable_key]
    key_of, required_of = _parts(at), _parts(required)  # typed values: a part is None or an int or a str
    make = _tuple_maker(spec)
    rows: list[tuple[Any, ...]] = []
    for parent_key, parent in parents:
        by_key: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # later items win, as in child_rows
        for item in spec.items(parent, parent_key):
            row = make(item) if type(item) is dict else typed_tuple(spec, item)
            key = key_of(row)
            if None in key and None in required_of(row):
                continue  # no usable key (row_key): raw keeps it
            by_key[key] = row
        rows.extend(by_key.values())
    return rows_table(spec, rows, system)


def _parts(positions: Sequence[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function reading the values at `positions` of a row as a tuple (itemgetter's, even for one or none)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    return lambda row: tuple(row[i] for i in positions)


class _FieldProbe(Mapping[str, Any]):
    """An empty object that remembers which top-level fields a column's getter asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return default

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


_DOCUMENTED: dict[str, tuple[frozenset[str], frozenset[str]]] = {}


def documented_fields(spec: TableSpec) -> tuple[frozenset[str], frozenset[str]]:
    """(fields the columns read, fields that may be absent): the shape drift is judged against.

    Child list fields may be absent (a list item omits what its by-id object carries), and the
    envelope fields are the response's, not the record's.
    """
    if spec.name not in _DOCUMENTED:
        probe = _FieldProbe()
        for column in spec.columns:
            column.read(probe)
        optional = frozenset({c.list_key for c in children_of(spec.name) if c.list_key} | ENVELOPE_FIELDS)
        _DOCUMENTED[spec.name] = (frozenset(probe.asked) | optional, optional)
    return _DOCUMENTED[spec.name]


def drift_of(spec: TableSpec, objects: Iterable[Mapping[str, Any]]) -> SchemaDrift:
    """Per field, how many objects had an unknown field, lacked a documented one, or had a value
    of the wrong type (which becomes null in its typed column while `_raw` keeps it)."""
    known, optional = documented_fields(spec)
    required = known - optional
    drift = SchemaDrift()
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        for name in obj.keys() - known:
            drift.unknown[name] = drift.unknown.get(name, 0) + 1
        for name in required - obj.keys():
            drift.missing[name] = drift.missing.get(name, 0) + 1
        # Judged on the typed row (the spec's generated function for a dict): only a null, or a
        # list holding one, can hide a value that did not coerce, so only those columns read the
        # raw value again (a column at a time, every value coerced again, cost ~5 % of a merge).
        for column, value in zip(spec.columns, typed_row(spec, obj).values(), strict=True):
            if value is None:
                if column.read(obj) is not None:
                    drift.uncoercible[column.name] = drift.uncoercible.get(column.name, 0) + 1
            elif type(value) is list and None in value and not _coerced(spec, column, column.read(obj)):
                drift.uncoercible[column.name] = drift.uncoercible.get(column.name, 0) + 1
    return drift


def _coerced(spec: TableSpec, column: Column, raw: Any) -> bool:
    value = coerce(spec, column, raw)
    if isinstance(value, list) and isinstance(raw, list):
        return all(v is not None or r is None for v, r in zip(value, raw, strict=True))
    return value is not None


def arrow_table(spec: TableSpec, rows: Iterable[Mapping[str, Any]], extra: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """Rows (dicts of already-typed values) -> an Arrow table with the spec's column types.

    Columns missing from a row are null. `extra` adds staging-only columns (e.g. `_action`).
    """
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in spec.all_columns]
    fields += [pa.field(name, dtype) for name, dtype in (extra or {}).items()]
    return pa.Table.from_pylist(list(rows), schema=pa.schema(fields))  # in C: half the cost of a column at a time


def flatten_entity(entity: str, objects: Iterable[Mapping[str, Any]]) -> dict[str, pa.Table]:
    """Stateless flattening of one batch (no merge with stored rows): entity table + children.

    Useful to inspect what a batch turns into; the store uses the same building blocks after
    merging each object with what it already holds.
    """
    spec = ENTITY_TABLES[entity]
    parents: list[dict[str, Any]] = []
    kids: dict[str, list[dict[str, Any]]] = {c.name: [] for c in children_of(spec.name)}
    for obj in objects:
        row = typed_row(spec, obj)
        key = row_key(spec, row)
        if key is None:
            continue
        parents.append({**row, "_raw": dump_json(obj)})
        for child_spec in children_of(spec.name):
            if has_child_list(child_spec, obj):
                kids[child_spec.name].extend(child_rows(child_spec, obj, key))
    tables = {spec.name: arrow_table(spec, parents)}
    tables.update({name: arrow_table(TABLES[name], rows) for name, rows in kids.items()})
    return tables
