"""How `sql` prints a result: DuckDB's own table, CSV or JSON, each faithful to the column types.

Values go straight from DuckDB's Python types to text, without pandas in between: a DATE stays a
date (pandas made it a timestamp at midnight), an integer column with NULLs stays integers
(pandas made it floats), and a BIGINT past 2**53 keeps every digit.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:  # relations come from the caller: `--help` and a usage error need no DuckDB
    import duckdb

# DuckDB's table view is this wide unless asked otherwise (its own default when not on a terminal).
DEFAULT_TABLE_WIDTH = 120
# `--wide`: wide enough for every column of every table this project publishes, whole.
WIDE = 1_000_000


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def render(rel: duckdb.DuckDBPyRelation, output: OutputFormat | str, *, wide: bool = False,
           max_rows: int | None = None) -> str:
    """The relation as text in `output` format; `wide`/`max_rows` shape the table view only."""
    output = OutputFormat(output.lower() if isinstance(output, str) else output)
    if output is OutputFormat.table:
        return table(rel, wide=wide, max_rows=max_rows)
    if output is OutputFormat.csv:
        return as_csv(rel.columns, rel.fetchall())
    return as_json(rel.columns, rel.fetchall())


def table(rel: duckdb.DuckDBPyRelation, *, wide: bool = False, max_rows: int | None = None) -> str:
    """DuckDB's box rendering; `wide` shows every column and every character of every value."""
    options: dict[str, Any] = {"max_width": WIDE if wide else DEFAULT_TABLE_WIDTH}
    if wide:
        options["max_col_width"] = WIDE
    if max_rows is not None:
        options["max_rows"] = max_rows
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rel.show(**options)
    return buffer.getvalue().rstrip("\n")


def as_csv(columns: list[str], rows: list[tuple]) -> str:
    # RFC 4180's CRLF: Python's writer then quotes every cell holding a \r or \n (with "\n" as
    # the terminator a lone \r went out bare, and a reader split the row there).
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    return buffer.getvalue().removesuffix("\r\n")


def as_json(columns: list[str], rows: list[tuple]) -> str:
    """A JSON array of objects, one per row; repeated column names get a suffix (`id`, `id_1`)."""
    names = _unique(columns)
    return json.dumps([dict(zip(names, map(jsonable, row), strict=True)) for row in rows], ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON sees it: dates as YYYY-MM-DD, timestamps as ISO 8601, lists and structs nested."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (UUID, timedelta)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(jsonable(value), ensure_ascii=False)
    converted = jsonable(value)
    return "" if converted is None else converted


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}_{count}")
    return names
