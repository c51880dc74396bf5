"""jofi-pipeline: JOFI API v2 -> per-mode DuckDB + Parquet, as Dagster assets."""
