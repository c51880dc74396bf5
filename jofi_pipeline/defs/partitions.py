"""The `mode` partition: live and test data are separate partitions with separate storage."""

import dagster as dg

from jofi_pipeline.settings import MODES

mode_partitions = dg.StaticPartitionsDefinition(list(MODES))

# Every sync run carries its mode (besides Dagster's own dagster/partition) and who launched it,
# so the Runs page filters alike whichever job ran it (an asset backfill runs as __ASSET_JOB).
MODE_TAG = "jofi/mode"
LAUNCHED_BY_TAG = "jofi/launched_by"


def per_mode(metadata, mode: str) -> dict:
    """Numbers keyed with their mode, e.g. `api_total_count (live)`.

    Dagster plots each numeric metadata key of a check over all its evaluations, whatever the
    partition: one key for both modes draws live and test as one zigzag line. One key per mode
    draws one line per mode; texts keep their plain names.
    """
    return {
        (f"{key} ({mode})" if isinstance(value, (int, float, dg.IntMetadataValue, dg.FloatMetadataValue))
         and not isinstance(value, bool) else key): value
        for key, value in metadata.items()
    }
