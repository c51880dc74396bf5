"""The sync job and its nightly schedule.

The nightly is RUNNING by default where a live key is set in the code location's environment (the
nightly is what keeps the live warehouse fresh, and nobody should have to remember a click) and
STOPPED where none is (every run could only fail). A toggle in the UI is stored in the instance
and wins over the default from then on.
"""

import logging

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs.partitions import LAUNCHED_BY_TAG, MODE_TAG
from jofi_pipeline.defs.tables import GROUP, SOURCE_KEY

ENV_SCHEDULE_TIMEZONE = settings.ENV_SCHEDULE_TIMEZONE
# A timezone Dagster does not know would fail the whole code location (every command, the UI):
# the schedule falls back to UTC and says so, in its description and in the log.
_TIMEZONE_PROBLEM = settings.schedule_timezone_problem()
if _TIMEZONE_PROBLEM:
    logging.getLogger("jofi_pipeline").warning(_TIMEZONE_PROBLEM)
# Where run monitoring is on (deploy/dagster.yaml, Helm), a run still going after this is
# terminated: with one run per mode in the queue, a hung run would otherwise hold back every later
# run of its mode.
MAX_RUNTIME_SECONDS = 6 * 3600

jofi_sync = dg.define_asset_job(
    "jofi_sync",
    # Every table and view (partitioned by `mode`, inferred from the assets); not the API itself.
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.keys(SOURCE_KEY),
    # One step: the multiprocess executor would only add seconds of start-up.
    executor_def=dg.in_process_executor,
    description="Sync one mode (partition) of the JOFI API into its warehouse.",
    tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
)


@dg.schedule(
    cron_schedule="0 2 * * *",
    job=jofi_sync,
    name="jofi_nightly_live",
    execution_timezone=settings.schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING if settings.api_key("live") else dg.DefaultScheduleStatus.STOPPED,
    description="Nightly live sync at 02:00 (timezone from JOFI_SCHEDULE_TIMEZONE, default UTC)."
    + (f" WARNING: {_TIMEZONE_PROBLEM}." if _TIMEZONE_PROBLEM else ""),
)
def jofi_nightly_live(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(
        partition_key="live", run_key=f"live-{context.scheduled_execution_time:%Y-%m-%d}",
        tags={MODE_TAG: "live", LAUNCHED_BY_TAG: "schedule"},
    )
