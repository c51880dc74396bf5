"""Column descriptions inside the Parquet files, where Arrow-based readers look for them.

DuckDB's `COPY … (FORMAT parquet)` writes no column comments, so the Arrow schema of the table
(types as DuckDB exports them, timestamps in UTC) with each field's comment as field metadata
`description`, and the table's comment as schema metadata, is stored under the `ARROW:schema`
key, the key pyarrow itself writes. pyarrow, pandas and polars then show
`pq.read_schema(path).field("email").metadata[b"description"]`; the column data is untouched.
"""

from __future__ import annotations

import base64

import duckdb
import pyarrow as pa

from jofi_pipeline.warehouse.schema import comment_sql, create_table_sql
from jofi_pipeline.warehouse.tables import TableSpec

ARROW_SCHEMA_KEY = "ARROW:schema"
DESCRIPTION = "description"
# Part of each table's publish fingerprint: bump it when what this module writes changes, so
# Parquet files of older versions are written again instead of hard-linked.
LAYOUT = "arrow-schema-descriptions-1"


# Per table DDL and comments: the schema depends on nothing else, and asking DuckDB for it
# (a cursor and an Arrow export per table) was a few ms per table on every publish.
_described: dict[tuple[str, ...], pa.Schema] = {}


def described_schema(con: duckdb.DuckDBPyConnection, source: str, spec: TableSpec) -> pa.Schema:
    """The Arrow schema of `SELECT * FROM source` (a table made from `spec`) with the spec's
    comments on its fields."""
    key = (create_table_sql(spec), spec.comment, *comment_sql(spec), duckdb.__version__)
    if key not in _described:
        _described[key] = _describe(con, source, spec)
    return _described[key]


def _describe(con: duckdb.DuckDBPyConnection, source: str, spec: TableSpec) -> pa.Schema:
    with con.cursor() as cursor:  # its own result: the caller's connection may hold an unread one
        exported = cursor.sql(f"SELECT * FROM {source} LIMIT 0").to_arrow_table().schema
    comments = {column.name: column.comment for column in spec.all_columns}
    fields = []
    for field in exported:
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            field = field.with_type(pa.timestamp(field.type.unit, tz="UTC"))  # as Parquet stores it
        if field.name in comments:
            field = field.with_metadata({DESCRIPTION: comments[field.name]})
        fields.append(field)
    return pa.schema(fields, metadata={DESCRIPTION: spec.comment})


def kv_metadata_option(schema: pa.Schema) -> str:
    """`KV_METADATA {…}` for DuckDB's COPY: the schema, serialized as pyarrow stores it."""
    blob = base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
    return f"KV_METADATA {{'{ARROW_SCHEMA_KEY}': '{blob}'}}"
