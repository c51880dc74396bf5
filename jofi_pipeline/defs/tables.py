"""The asset graph: the JOFI API as its source, one asset per table and per view, prefix `jofi`.

Everything here is read from the warehouse's specs: descriptions and column schemas (the same
texts as the DuckDB `COMMENT ON`s), table names, and the edges (warehouse/lineage.py), so a table
or view added to the specs joins the graph where it belongs.
"""

import dagster as dg

from jofi_pipeline.defs.partitions import mode_partitions
from jofi_pipeline.warehouse.lineage import reads_api, upstream_tables, view_tables
from jofi_pipeline.warehouse.paths import DB_NAME
from jofi_pipeline.warehouse.tables import TABLES, TableSpec
from jofi_pipeline.warehouse.views import VIEWS, ViewSpec

GROUP = "jofi"
PREFIX = "jofi"
SOURCE_KEY = dg.AssetKey([PREFIX, "jofi_api"])
CATALOG = DB_NAME.removesuffix(".duckdb")  # how DuckDB names the published file once attached


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([PREFIX, table])


def table_name(name: str) -> str:
    """`dagster/table_name`: catalog.schema.table in the published database of a mode."""
    return f"{CATALOG}.main.{name}"


def column_schema(spec: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.comment) for c in spec.all_columns]
    )


def source_spec() -> dg.AssetSpec:
    """The JOFI API v2 as an external asset: what every entity table is read from."""
    return dg.AssetSpec(
        SOURCE_KEY,
        description="The JOFI API v2 (jofiscore.com), read with the mode's key: the source of every entity table. "
        "Its lists are capped windows of the newest 30-50 records (see the coverage checks).",
        group_name=GROUP,
        kinds={"api"},
    )


def table_specs() -> list[dg.AssetSpec]:
    """A function, not a module constant: the defs loader would collect bare specs as assets."""
    return [_table_spec(spec) for spec in TABLES.values()]


def view_specs() -> list[dg.AssetSpec]:
    return [_view_spec(view) for view in VIEWS]


def _table_spec(spec: TableSpec) -> dg.AssetSpec:
    deps = ([SOURCE_KEY] if reads_api(spec) else []) + [asset_key(t) for t in upstream_tables(spec)]
    return dg.AssetSpec(
        asset_key(spec.name),
        description=spec.comment,
        group_name=GROUP,
        partitions_def=mode_partitions,
        kinds={"duckdb", "parquet"},
        deps=deps,
        metadata={
            "dagster/column_schema": column_schema(spec),
            "dagster/table_name": table_name(spec.name),
            "key": ", ".join(spec.key),
        },
    )


def _view_spec(view: ViewSpec) -> dg.AssetSpec:
    # The view's columns are known once DuckDB binds it: each publish records them (with their
    # comments) as the materialization's column schema.
    return dg.AssetSpec(
        asset_key(view.name),
        description=view.comment,
        group_name=GROUP,
        partitions_def=mode_partitions,
        kinds={"duckdb"},
        deps=[asset_key(t) for t in view_tables(view)],
        metadata={"dagster/table_name": table_name(view.name)},
    )
