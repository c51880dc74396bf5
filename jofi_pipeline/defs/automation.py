"""The sync job and its nightly schedule."""

import os

import dagster as dg

from jofi_pipeline.defs.tables import GROUP

ENV_SCHEDULE_TIMEZONE = "JOFI_SCHEDULE_TIMEZONE"
# Where run monitoring is on (deploy/dagster.yaml, Helm), a run still going after this is
# terminated: with one run per mode in the queue, a hung run would otherwise hold back every later
# run of its mode.
MAX_RUNTIME_SECONDS = 6 * 3600

jofi_sync = dg.define_asset_job(
    "jofi_sync",
    selection=dg.AssetSelection.groups(GROUP),  # partitioned by `mode`, inferred from the assets
    # One step: the multiprocess executor would only add seconds of start-up.
    executor_def=dg.in_process_executor,
    description="Sync one mode (partition) of the JOFI API into its warehouse.",
    tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
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
