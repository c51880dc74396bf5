"""The sync job and its nightly schedule."""

import os

import dagster as dg

from jofi_pipeline.defs.tables import GROUP

ENV_SCHEDULE_TIMEZONE = "JOFI_SCHEDULE_TIMEZONE"

jofi_sync = dg.define_asset_job(
    "jofi_sync",
    selection=dg.AssetSelection.groups(GROUP),  # partitioned by `mode`, inferred from the assets
    # One step: the multiprocess executor would only add seconds of start-up.
    executor_def=dg.in_process_executor,
    description="Sync one mode (partition) of the JOFI API into its warehouse.",
)


@dg.schedule(
    cron_schedule="0 2 * * *",
    job=jofi_sync,
    name="jofi_nightly_live",
    execution_timezone=os.environ.get(ENV_SCHEDULE_TIMEZONE, "UTC"),
    description="Nightly live sync at 02:00 (timezone from JOFI_SCHEDULE_TIMEZONE, default UTC).",
)
def jofi_nightly_live(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(partition_key="live", run_key=f"live-{context.scheduled_execution_time:%Y-%m-%d}")
