"""Asset keys for the warehouse tables: one asset per contract table, prefix `jofi`."""

import dagster as dg

from jofi_pipeline.defs.partitions import mode_partitions
from jofi_pipeline.warehouse.tables import TABLES

GROUP = "jofi"


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["jofi", table])


def table_specs() -> list[dg.AssetSpec]:
    """A function, not a module constant: the defs loader would collect bare specs as assets."""
    return [
        dg.AssetSpec(
            asset_key(spec.name),
            description=spec.comment,
            group_name=GROUP,
            partitions_def=mode_partitions,
            kinds={"duckdb", "parquet"},
        )
        for spec in TABLES.values()
    ]
