"""DDL from the specs: create, migrate (add new columns) and comment every table.

Run on the work database at open_run (without comments) and on the fresh published file at
publish; `catalog` names an ATTACHed database so the same code builds both.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from jofi_pipeline.warehouse.tables import TABLES, TableSpec


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def qualified(table: str, catalog: str | None = None) -> str:
    return f"{ident(catalog)}.main.{ident(table)}" if catalog else ident(table)


def create_table_sql(spec: TableSpec, catalog: str | None = None) -> str:
    # No PRIMARY KEY constraint: keys are enforced by the merge (MERGE ... ON key), and DuckDB
    # restricts ALTER TABLE on indexed tables, which would block adding spec columns later.
    columns = ",\n  ".join(f"{ident(c.name)} {c.type}" for c in spec.all_columns)
    return f"CREATE TABLE IF NOT EXISTS {qualified(spec.name, catalog)} (\n  {columns}\n)"


def comment_texts(spec: TableSpec) -> list[tuple[str, str]]:
    """(column, comment) for the table ("" as its column) and each column, in comment_sql's order."""
    return [("", f"{spec.comment} Key: ({', '.join(spec.key)}).")] + [(c.name, c.comment) for c in spec.all_columns]


def comment_sql(spec: TableSpec, catalog: str | None = None) -> list[str]:
    table = qualified(spec.name, catalog)
    return [
        f"COMMENT ON TABLE {table} IS {literal(text)}" if not column
        else f"COMMENT ON COLUMN {table}.{ident(column)} IS {literal(text)}"
        for column, text in comment_texts(spec)
    ]


def ensure_schema(
    con: duckdb.DuckDBPyConnection, catalog: str | None = None, specs: Iterable[TableSpec] | None = None,
    *, comments: bool = True,
) -> None:
    """Create missing tables, add columns new specs introduced, apply the comments that differ.

    In one transaction: hundreds of DDL statements each committing on its own cost a WAL write
    apiece, seconds per run; together they commit once (and all or nothing). A comment already
    in place is not written again: every COMMENT is a catalog change, and re-applying the ~500
    of an up-to-date work database cost about 0.3 s of CPU on every run. `comments=False` (the
    work database: nobody reads it but the sync, and publish comments the tables it builds)
    skips them altogether: writing them into a new work database cost about as much again.
    """
    con.begin()
    try:
        where = "WHERE database_name = coalesce(?, current_database()) AND schema_name = 'main'"
        columns = {
            (table, column): comment
            for table, column, comment in con.execute(
                f"SELECT table_name, column_name, comment FROM duckdb_columns() {where}", [catalog]
            ).fetchall()
        }
        tables = dict(con.execute(f"SELECT table_name, comment FROM duckdb_tables() {where}", [catalog]).fetchall())
        for spec in specs or TABLES.values():
            statements = [] if spec.name in tables else [create_table_sql(spec, catalog)]
            if spec.name in tables:  # a table created by an older spec: add the columns it lacks
                statements += [
                    f"ALTER TABLE {qualified(spec.name, catalog)} ADD COLUMN IF NOT EXISTS {ident(c.name)} {c.type}"
                    for c in spec.all_columns if (spec.name, c.name) not in columns
                ]
            if comments:
                held = {"": tables.get(spec.name)} | {c.name: columns.get((spec.name, c.name)) for c in spec.all_columns}
                statements += [sql for sql, (column, text) in zip(comment_sql(spec, catalog), comment_texts(spec))
                               if held[column] != text]
            if statements:
                con.execute(";\n".join(statements))  # one round trip per table
    except BaseException:
        con.rollback()
        raise
    con.commit()
