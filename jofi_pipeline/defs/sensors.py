"""`jofi_webhook_events`: new ids in the live inbox -> a targeted `jofi_sync` run of the live partition.

The receiver (`jofi-pipeline webhooks`) appends events to `$JOFI_DATA_DIR/live/inbox/events.sqlite`;
this sensor turns the ids added since its cursor (the inbox's last `pending_ids.seq` it handled)
into one run that fetches exactly those records by id, plus their scorecards and job-fit reports,
without reading the lists. While a live sync is queued or running it waits (cursor unchanged), so
its runs never collide with the nightly one on the warehouse's single-writer lock. Live only:
test keys never trigger webhooks. Ids the sensor misses (sensor off, run failed) stay pending in
the inbox and the next normal sync fetches them.
"""

from __future__ import annotations

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs.automation import jofi_sync
from jofi_pipeline.defs.partitions import LAUNCHED_BY_TAG, MODE_TAG
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox, group_ids

MODE = "live"
ASSET_NODE = "jofi_warehouse"
MAX_IDS_PER_RUN = 5_000
TARGETED_TAG = "jofi/targeted"
BUSY_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _live_sync_in_progress(context: dg.SensorEvaluationContext) -> bool:
    try:
        instance = context.instance
    except Exception:  # built without an instance (unit tests): nothing can be running
        return False
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=jofi_sync.name, statuses=BUSY_STATUSES, tags={"dagster/partition": MODE}),
        limit=1,
    )
    return bool(runs)


@dg.sensor(
    name="jofi_webhook_events",
    job=jofi_sync,
    minimum_interval_seconds=30,
    description="Refresh exactly the records named by new webhook events (and imported ids) in the live warehouse.",
)
def jofi_webhook_events(context: dg.SensorEvaluationContext, jofi: JofiSyncResource) -> dg.SensorResult | dg.SkipReason:
    path = ModePaths.of(MODE, jofi.data_dir or None).inbox
    if not path.exists():
        return dg.SkipReason(f"no live inbox at {path}: start `{settings.CLI} webhooks` (live only)")
    cursor = int(context.cursor or 0)
    with Inbox.open(path, create=False) as inbox:
        rows = inbox.after(cursor, MAX_IDS_PER_RUN)
    if not rows:
        return dg.SkipReason("no new webhook events since the last run request")
    if _live_sync_in_progress(context):
        return dg.SkipReason("a live sync is queued or running; the new ids wait for the next tick")
    targets = group_ids(rows)
    first, last = rows[0].seq, rows[-1].seq
    request = dg.RunRequest(
        run_key=f"webhooks-{first}-{last}",
        partition_key=MODE,
        run_config={"ops": {ASSET_NODE: {"config": {"targets": targets}}}},
        tags={TARGETED_TAG: "true", "jofi/inbox_seq": f"{first}-{last}", MODE_TAG: MODE, LAUNCHED_BY_TAG: "sensor"},
    )
    return dg.SensorResult(run_requests=[request], cursor=str(last))
