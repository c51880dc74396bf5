"""What each asset's page shows after a sync: row count, a small preview, the columns, the charts.

Read from the published database (the copy analysts see), per partition (mode): the row count and
the preview are of that mode's file. The preview leaves out what should not sit in an event log:
`_raw` and other JSON columns (whole API objects), `*_url` columns (participants' assessment and
report links are credentials of a kind) and the columns that name or reach a person (names, emails,
phones): Dagster's event log is read by whoever operates the instance, not only by those allowed to
see participants. Values are cut to a readable width.
"""

from __future__ import annotations

import base64
import re

import dagster as dg

from jofi_pipeline.warehouse import PublishedReader
from jofi_pipeline.warehouse.tables import TABLES

PREVIEW_ROWS = 5
PREVIEW_WIDTH = 40
MAX_PICTURES = 6


def preview_columns(reader: PublishedReader, name: str) -> list[str]:
    return [column for column, sql_type, _ in reader.columns(name) if shown(column, sql_type)]


# A person's name or contact: participants (test takers, invitees) and the account's users alike.
PERSONAL_COLUMN = re.compile(r"(^|_)(first_name|last_name|full_name|email|phone)$")


def shown(column: str, sql_type: str) -> bool:
    return (
        column != "_raw"
        and sql_type.upper() != "JSON"
        and not column.endswith("_url")
        and not (sql_type.upper() == "VARCHAR" and PERSONAL_COLUMN.search(column))  # not `send_via_email`
    )


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    if not columns:
        return "(no columns to show)"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    if not rows:
        lines.append("| " + " | ".join("" for _ in columns) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= PREVIEW_WIDTH else text[: PREVIEW_WIDTH - 1] + "…"


def relation_metadata(reader: PublishedReader, name: str, mode: str, row_count: int | None = None) -> dict:
    """Row count and preview of a table or view; for a view also its columns as DuckDB bound them."""
    columns = preview_columns(reader, name)
    if name in READ_AGAIN:
        reader.compute_once(name)
    if row_count is None:  # a view: counted by the query of its preview (computed once, not twice)
        row_count, rows = reader.count_and_preview(name, columns, PREVIEW_ROWS)
    else:
        rows = reader.preview(name, columns, PREVIEW_ROWS)
    metadata: dict = {"dagster/row_count": row_count, "preview": dg.MetadataValue.md(markdown_table(columns, rows))}
    metadata.update(picture_metadata(reader, name, mode))
    if name not in TABLES:  # views: their columns are known only once bound (tables: in the spec)
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(c, t, description=comment or "") for c, t, comment in reader.columns(name)]
        )
    return metadata


# Views computed once for their preview and their chart (picture_metadata): the funnel, read by
# three queries. Copying sync_coverage or scores_long (thousands of rows) costs more than computing
# them twice (measured).
READ_AGAIN = ("invitation_funnel",)


def picture_metadata(reader: PublishedReader, name: str, mode: str) -> dict:
    """The chart that belongs on this asset's page, for this mode only (see report/pictures.py)."""
    from jofi_pipeline.report import pictures

    drawn = {
        "invitation_funnel": lambda: pictures.funnels(reader, mode),
        "sync_coverage": lambda: [pictures.coverage(reader, mode)],
        "scores_long": lambda: pictures.scores(reader, mode)[:MAX_PICTURES],
    }.get(name)
    if drawn is None:
        return {}
    images = "\n\n".join(f"![{name}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})" for svg in drawn())
    return {"chart": dg.MetadataValue.md(images)}
