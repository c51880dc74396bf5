"""Per table spec, one generated function that turns a plain JSON object into its typed row.

`flatten.typed_row` runs for every row a sync writes (a full sync of 2,000 test takers: ~200,000,
most of them scorecard scores), and a loop over the columns calling a getter, a coercer and an id
rule per value spent most of its time on the calls themselves. The function made here does, for a
`dict`, what that loop does, written out column by column: a top-level field is one `get`, the
common types (an `int` that fits 64 bits, a `str`, a `bool`, a finite `float`) are kept inline and
anything else goes to the same coercer, and the id rule likewise. Made once per spec, from the spec
alone (no value is ever put in the code: names go in as literals through `repr`).

`flatten.typed_row` still takes any other Mapping the general way; a property test holds the two
equal for every table and values of every JSON type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

RowMaker = Callable[[Mapping[str, Any]], dict[str, Any]]
TupleMaker = Callable[[Mapping[str, Any]], tuple[Any, ...]]

# Per SQL type: (the test for a value kept as it is or checked inline, the value it becomes then).
# Anything else goes to the type's coercer (flatten.COERCERS), which gives the same for these.
_INLINE = {
    "BIGINT": ("type(v) is int", "v if MIN <= v <= MAX else None"),
    "VARCHAR": ("type(v) is str", "v"),
    "BOOLEAN": ("v is True or v is False", "v"),
    "DOUBLE": ("type(v) is float", "v if isfinite(v) else None"),
}
# A BIGINT under an id rule: a positive int64 (flatten._kept_id on an int).
_INLINE_ID = ("type(v) is int", "v if 1 <= v <= MAX else None")


def row_maker(steps, types, kept_id: Callable[[str, Any], Any], *, as_tuple: bool = False) -> RowMaker | TupleMaker:
    """The function for one spec's steps (flatten._steps: name, top-level field, getter, coercer,
    id rule) and its columns' SQL types, equal to flatten's loop over them for a plain dict.

    `as_tuple`: the same values as a tuple in column order (flatten.child_table turns a batch's
    rows into columns at once, and a tuple costs less to make than a dict)."""
    lines = ["def typed_row(source):", "    get = source.get"]
    env: dict[str, Any] = {"kept_id": kept_id, "isfinite": math.isfinite, "MIN": INT64_MIN, "MAX": INT64_MAX}
    names = []
    for i, ((name, field, read, convert, rule), sql_type) in enumerate(zip(steps, types, strict=True)):
        env[f"read{i}"], env[f"convert{i}"], env[f"rule{i}"] = read, convert, rule
        lines.append(f"    v = {f'get({field!r})' if field is not None else f'read{i}(source)'}")
        lines += _coerced(f"c{i}", i, sql_type, rule)
        names.append(name)
    if as_tuple:
        lines.append("    return (" + "".join(f"c{i}, " for i in range(len(names))) + ")")
    else:
        lines.append("    return {" + ", ".join(f"{name!r}: c{i}" for i, name in enumerate(names)) + "}")
    code = "\n".join(lines)
    exec(compile(code, f"<typed_row of {len(names)} columns>", "exec"), env)  # noqa: S102 - made from the spec only
    return env["typed_row"]


def _coerced(c: str, i: int, sql_type: str, rule: str | None) -> list[str]:
    """Lines setting `c` to convert{i}(v) and then to the id rule's verdict, common cases inline."""
    general = [f"{c} = convert{i}(v)"]
    if rule is not None:
        general.append(f"if {c} is not None: {c} = kept_id(rule{i}, {c})")
    inline = _INLINE_ID if rule is not None and sql_type == "BIGINT" else _INLINE.get(sql_type)
    if inline is None:
        return ["    " + line for line in general]
    test, kept = inline
    fast = [f"{c} = {kept}"]
    if rule is not None and sql_type != "BIGINT":
        fast.append(f"if {c} is not None: {c} = kept_id(rule{i}, {c})")
    return [f"    if {test}:", *("        " + line for line in fast), "    else:", *("        " + line for line in general)]
