"""The published database as a person opens it: read-only in fact, not only by the file's mode.

`read_only=True` only stops writes to the database file itself; DuckDB would still run `COPY ... TO`
any path, `ATTACH` or `INSTALL` anything, read any file the user can read and change its own
settings. So every connection to a published copy is opened with:
- `enable_external_access = false`: no file or network access besides the database file (COPY,
  EXPORT, read_csv/read_parquet/glob, ATTACH, extensions, secrets, Python variables as tables);
- extension autoload/autoinstall off, and no spilling to a temp directory (nothing is written,
  not even temporary files: a query that needs more memory than the machine has fails instead);
- `lock_configuration = true` last, so no `SET`/`RESET`/`PRAGMA` can undo any of it.
And before a person's query runs, `screen` classifies each statement (`duckdb.extract_statements`)
and refuses everything but reads, with a one-line reason: DuckDB's own refusal would say only
"Permission Error" and would not cover statements that change nothing on disk but are still not
reads (CREATE TEMP ..., SET VARIABLE, transactions, PREPARE).

Reads include SELECT (with SHOW, DESCRIBE, SUMMARIZE, PIVOT, FROM-first), EXPLAIN of a read, and
the read-only PRAGMAs / CALLs of catalog functions listed below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import duckdb

from jofi_pipeline.warehouse.errors import WarehouseError
from jofi_pipeline.warehouse.schema import literal

LOCKED_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_persistent_secrets": False,
    "temp_directory": "",
}

READ_TYPES = frozenset({"SELECT", "MULTI"})  # MULTI: PIVOT (a read that names its result columns first)
READ_PRAGMAS = frozenset({
    "table_info", "show", "show_tables", "show_tables_expanded", "show_databases", "database_size",
    "storage_info", "version", "platform", "database_list", "functions", "collations", "metadata_info", "user_agent",
})
READ_CALL = re.compile(r"(?is)\s*call\s+(pragma_|duckdb_)\w*\s*\(")
_PRAGMA_NAME = re.compile(r"(?is)\s*pragma\s+(\w+)")
_EXPLAIN = re.compile(r"(?is)\s*explain\s+(analyze\s+)?")
_IMPORT = re.compile(r"(?is)\s*import\b")

WHY: dict[str, str] = {
    "COPY": "COPY reads or writes files; this door reads only the published tables (save a result with --format csv or json instead)",
    "EXPORT": "EXPORT DATABASE writes files; this door reads only the published tables (save a result with --format csv or json instead)",
    "ATTACH": "ATTACH opens another database; this door reads only the published warehouse",
    "DETACH": "DETACH changes which databases are open; this door reads only the published warehouse",
    "LOAD": "INSTALL/LOAD adds extensions; extensions are off in this read-only door",
    "EXTENSION": "extension statements are off in this read-only door",
    "SET": "SET/RESET/USE changes the session, whose configuration is locked in this read-only door",
    "VARIABLE_SET": "SET VARIABLE changes the session, whose configuration is locked in this read-only door",
    "IMPORT": "IMPORT DATABASE reads files and writes tables; the published warehouse is read-only",
    "PRAGMA": "this PRAGMA can change settings or touch files; only read-only ones (table_info, show_tables, "
              "database_size, storage_info, version, ...) run here",
    "UNKNOWN": "this statement is not a read; only queries run against the published warehouse",
    "CALL": "only catalog functions (pragma_*, duckdb_*) can be CALLed here; use SELECT for the rest",
    "TRANSACTION": "transactions are not needed to read; send the SELECT alone",
    "PREPARE": "prepared statements are off in this read-only door; send the SELECT itself",
    "EXECUTE": "prepared statements are off in this read-only door; send the SELECT itself",
}
WRITES = "{kind} would change the database; the published warehouse is read-only (the sync writes it, analysts read it)"


class RefusedStatement(WarehouseError):
    """A statement the read-only door does not run; the message is one line saying why."""


def connect(path: Path | str, settings: Mapping[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    """A locked read-only connection to a published database file.

    `settings` (e.g. {"TimeZone": "UTC"}) are applied before the configuration is locked.
    """
    con = duckdb.connect(str(path), read_only=True, config=dict(LOCKED_CONFIG))
    try:
        for name, value in (settings or {}).items():
            con.execute(f"SET {_setting_name(name)} = {literal(str(value))}")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _setting_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_]+", name):
        raise ValueError(f"not a setting name: {name!r}")
    return name


def screen(query: str) -> None:
    """Raise RefusedStatement (one line) unless every statement of `query` only reads.

    A query DuckDB cannot parse is left to DuckDB, whose parser error says where it is wrong.
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error:
        return
    for number, statement in enumerate(statements, start=1):
        reason = _refusal(_kind(statement), statement.query)
        if reason:
            where = f"statement {number} of {len(statements)} " if len(statements) > 1 else ""
            raise RefusedStatement(f"refused {where}({_first_words(statement.query)}): {reason}; nothing was run")


def _kind(statement: duckdb.Statement) -> str:
    try:
        return statement.type.name
    except ValueError:  # a type this duckdb's Python enum does not name (e.g. UPDATE EXTENSIONS)
        return "UNKNOWN"


def _refusal(kind: str, text: str) -> str | None:
    if kind in READ_TYPES:
        return None
    if kind == "EXPLAIN":
        inner = _EXPLAIN.sub("", text, count=1)
        try:
            explained = duckdb.extract_statements(inner)
        except (duckdb.Error, ValueError):
            return WRITES.format(kind="EXPLAIN of this statement")
        return next((r for s in explained if (r := _refusal(_kind(s), s.query))), None)
    if kind == "PRAGMA":
        if _IMPORT.match(text):
            return WHY["IMPORT"]
        match = _PRAGMA_NAME.match(text)
        return None if match and match.group(1).lower() in READ_PRAGMAS else WHY["PRAGMA"]
    if kind == "CALL":
        return None if READ_CALL.match(text) else WHY["CALL"]
    return WHY.get(kind) or WRITES.format(kind=kind.replace("_", " "))


def refusal_of(error: duckdb.Error) -> str | None:
    """The one-line reason when DuckDB itself refused something the lock forbids, else None."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, duckdb.PermissionException) or "disabled by configuration" in text:
        return ("refused: the query reads or writes files outside the published database; this door reads only "
                "the published tables (SHOW TABLES lists them)")
    if "configuration has been locked" in text:
        return "refused: the configuration of this read-only door is locked"
    return None


def _first_words(text: str, limit: int = 40) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 3] + "..."
