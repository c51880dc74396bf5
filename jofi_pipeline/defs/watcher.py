"""`jofi_window_watcher`: the window watcher (`jofi-pipeline watch`) as a Dagster sensor, off by default.

For accounts that cannot expose a webhook endpoint. Each tick it polls the three capped lists of
every mode whose API key is set, when that mode's poll is due by the interval the watcher chose
from the observed turnover (shortened after a window turned over), and queues the ids the
published warehouse does not hold in the mode's inbox. It starts no run: the next sync (nightly,
or the `jofi_webhook_events` sensor's targeted runs when that is on) fetches the queued ids by id.
It never opens the sync's DuckDB file, so it runs while a sync runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.webhooks.watch import due_in_s, poll_mode
from jofi_pipeline.webhooks.watch_log import format_interval


@dg.sensor(
    name="jofi_window_watcher",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Without webhooks: poll the capped lists when due and queue new ids for the next sync.",
)
def jofi_window_watcher(context: dg.SensorEvaluationContext, jofi: JofiSyncResource) -> dg.SkipReason:
    data_dir = Path(jofi.data_dir) if jofi.data_dir else settings.data_dir()
    said = []
    for mode in settings.MODES:
        if settings.api_key(mode) is None:
            said.append(f"{mode}: no {settings.KEY_ENV_VAR[mode]}, not watched")
            continue
        wait = due_in_s(data_dir, mode)
        if wait > 0:
            said.append(f"{mode}: next poll in {format_interval(wait)}")
            continue
        report = asyncio.run(poll_mode(mode, data_dir, base_url=jofi.base_url or None))
        for line in report.lines():
            context.log.info(line)
        said.append(report.lines()[0])
    return dg.SkipReason("; ".join(said))
