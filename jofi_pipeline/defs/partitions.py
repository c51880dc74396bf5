"""The `mode` partition: live and test data are separate partitions with separate storage."""

import dagster as dg

from jofi_pipeline.settings import MODES

mode_partitions = dg.StaticPartitionsDefinition(list(MODES))
