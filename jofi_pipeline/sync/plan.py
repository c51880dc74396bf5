"""A fetch plan: what one fan-out will ask for, parked in DuckDB and handed out a page at a time.

The plan of a large account (every test taker x every score profile on a full refresh) never
becomes a Python list: the query's result goes into a temporary table of a reader connection and
the fan-out pulls it page by page, so memory follows the page size, not the account's size.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import duckdb

DEFAULT_PAGE_SIZE = 1000

_names = itertools.count()


class Plan:
    """Rows of `sql` (run once, now), iterable page by page; close() drops the temporary table."""

    def __init__(self, reader: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], *, page_size: int = DEFAULT_PAGE_SIZE):
        self._reader = reader
        self._table = f"_fetch_plan_{next(_names)}"
        self._page_size = page_size
        used = {name: value for name, value in params.items() if f"${name}" in sql}
        reader.execute(
            f"CREATE TEMP TABLE {self._table} AS SELECT row_number() OVER () AS _seq, * FROM ({sql})", used
        )
        self.size: int = reader.execute(f"SELECT count(*) FROM {self._table}").fetchone()[0]
        described = reader.execute(f"SELECT * FROM {self._table} LIMIT 0").description
        self.columns: tuple[str, ...] = tuple(d[0] for d in described[1:])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        last = 0
        while True:
            page = self._reader.execute(
                f"SELECT * FROM {self._table} WHERE _seq > ? ORDER BY _seq LIMIT ?", [last, self._page_size]
            ).fetchall()
            if not page:
                return
            last = page[-1][0]
            for row in page:
                yield row[1:]

    def records(self) -> Iterator[dict[str, Any]]:
        """The rows as {column: value}, for plans whose columns are named (derived objects)."""
        for row in self:
            yield dict(zip(self.columns, row, strict=True))

    def reasons(self) -> str:
        """`new 12, completions_changed 3`: how many rows the plan holds per `reason` column value."""
        rows = self._reader.execute(
            f"SELECT reason, count(*) FROM {self._table} GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
        return ", ".join(f"{reason} {n}" for reason, n in rows)

    def close(self) -> None:
        self._reader.execute(f"DROP TABLE IF EXISTS {self._table}")

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
