"""DDL from the specs: create, migrate (add new columns) and comment every table.

Run on the work database at open_run and on the fresh published file at publish; `catalog`
names an ATTACHed database so the same code builds both.
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


def comment_sql(spec: TableSpec, catalog: str | None = None) -> list[str]:
    table = qualified(spec.name, catalog)
    key = ", ".join(spec.key)
    statements = [f"COMMENT ON TABLE {table} IS {literal(f'{spec.comment} Key: ({key}).')}"]
    statements += [f"COMMENT ON COLUMN {table}.{ident(c.name)} IS {literal(c.comment)}" for c in spec.all_columns]
    return statements


def ensure_schema(con: duckdb.DuckDBPyConnection, catalog: str | None = None, specs: Iterable[TableSpec] | None = None) -> None:
    """Create missing tables, add columns new specs introduced, (re)apply all comments.

    In one transaction: hundreds of DDL statements each committing on its own cost a WAL write
    apiece, seconds per run; together they commit once (and all or nothing).
    """
    con.begin()
    try:
        existing = set(
            con.execute(
                "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = coalesce(?, current_database()) "
                "AND schema_name = 'main'",
                [catalog],
            ).fetchall()
        )
        tables = {table for table, _ in existing}
        for spec in specs or TABLES.values():
            statements = [create_table_sql(spec, catalog)]
            if spec.name in tables:  # a table created by an older spec: add the columns it lacks
                statements += [
                    f"ALTER TABLE {qualified(spec.name, catalog)} ADD COLUMN IF NOT EXISTS {ident(c.name)} {c.type}"
                    for c in spec.all_columns if (spec.name, c.name) not in existing
                ]
            statements += comment_sql(spec, catalog)
            con.execute(";\n".join(statements))  # one round trip per table
    except BaseException:
        con.rollback()
        raise
    con.commit()
