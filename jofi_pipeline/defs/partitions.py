"""The `mode` partition: live and test data are separate partitions with separate storage."""

import dagster as dg

from jofi_pipeline.settings import MODES

mode_partitions = dg.StaticPartitionsDefinition(list(MODES))

# Every sync run carries its mode (besides Dagster's own dagster/partition) and who launched it,
# so the Runs page filters alike whichever job ran it (an asset backfill runs as __ASSET_JOB).
MODE_TAG = "jofi/mode"
LAUNCHED_BY_TAG = "jofi/launched_by"
