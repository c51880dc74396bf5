"""Staleness that shows on its own: the `freshness` check of `sync_runs`, per mode.

A sync evaluates it after it publishes (so it turns green at once), and the `jofi_freshness`
sensor evaluates it every few minutes from the published database alone, without a run: a
nightly that stopped (schedule off, daemon down, every run failing) turns it red within the
hour, whether or not anything else runs.

Live is what the nightly keeps fresh: older than FRESHNESS_WINDOW is an ERROR (red). Test mode
is synced by hand, so the same age is only a WARN. Why not Dagster's `FreshnessPolicy`: its
time-window evaluation reads an asset's latest materialization of *any* partition, so a test
sync would keep a stale live warehouse green.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.partitions import per_mode
from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseError
from jofi_pipeline.warehouse.published import RunSummary

CHECK_NAME = "freshness"
FRESHNESS_WINDOW = timedelta(hours=26)
SENSOR_INTERVAL_SECONDS = 5 * 60
SEVERITY = {"live": dg.AssetCheckSeverity.ERROR, "test": dg.AssetCheckSeverity.WARN}


@dataclass(frozen=True)
class Verdict:
    mode: str
    passed: bool
    metadata: dict
    run_id: str

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return SEVERITY[self.mode]

    def result(self) -> dg.AssetCheckResult:
        """Inside a sync run (run_checks keys its numbers by mode)."""
        return dg.AssetCheckResult(
            asset_key=asset_key("sync_runs"), check_name=CHECK_NAME, passed=self.passed,
            severity=self.severity, metadata=self.metadata,
        )

    def evaluation(self) -> dg.AssetCheckEvaluation:
        """Reported by the sensor, without a run, for the mode's partition."""
        return dg.AssetCheckEvaluation(
            asset_key=asset_key("sync_runs"), check_name=CHECK_NAME, passed=self.passed,
            severity=self.severity, metadata=per_mode(self.metadata, self.mode), partition=self.mode,
        )


def verdict(mode: str, last: RunSummary | None, now: datetime, *, why_missing: str = "") -> Verdict:
    """Is the last published run of `mode` within FRESHNESS_WINDOW of `now`?"""
    finished = last.finished_at if last else None
    age = (now - finished) if finished is not None else None
    passed = age is not None and age <= FRESHNESS_WINDOW
    if passed:
        what_to_do = ""
    elif mode == "live":
        what_to_do = (why_missing or f"The live warehouse was last published {_hours(age)} ago.") + (
            " Check that the jofi_nightly_live schedule is running (Automation page) and the daemon with it, "
            "and read the last failed jofi_sync run's error; `./jofi-pipeline sync --mode live` publishes now."
        )
    else:
        what_to_do = (why_missing or f"The test warehouse was last published {_hours(age)} ago.") + (
            " Test mode is synced by hand: `./jofi-pipeline sync --mode test`."
        )
    return Verdict(
        mode=mode,
        passed=passed,
        run_id=last.run_id if last else "",
        metadata={
            "last_success": str(finished) if finished else "never",
            "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
            "window_hours": FRESHNESS_WINDOW.total_seconds() / 3600,
            "evaluated_at": now.isoformat(timespec="seconds"),
            "what_to_do": what_to_do,
        },
    )


def _hours(age: timedelta | None) -> str:
    return "never" if age is None else f"{age.total_seconds() / 3600:.1f} h"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def evaluate_modes(data_dir: Path, now: datetime) -> list[Verdict]:
    """One verdict per mode that has a published warehouse, or whose key is set (never synced)."""
    verdicts = []
    for mode in settings.MODES:
        published = PublishedWarehouse(mode, data_dir)
        if not published.exists():
            if settings.api_key(mode) is not None:
                verdicts.append(verdict(mode, None, now, why_missing=f"No {mode} sync has published yet ({published.path})."))
            continue
        try:
            with published.open() as reader:
                last = reader.last_published_run()
        except WarehouseError as exc:
            verdicts.append(verdict(mode, None, now, why_missing=f"Cannot read {published.path}: {exc}."))
            continue
        verdicts.append(verdict(mode, last, now))
    return verdicts


@dg.sensor(
    name="jofi_freshness",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: is each mode's published warehouse younger than 26 h? Reports the freshness "
    "check of sync_runs without starting a run (live: red when stale; test: a warning).",
)
def jofi_freshness(context: dg.SensorEvaluationContext, jofi: JofiSyncResource) -> dg.SensorResult | dg.SkipReason:
    data_dir = Path(jofi.data_dir) if jofi.data_dir else settings.data_dir()
    verdicts = evaluate_modes(data_dir, utc_now())
    if not verdicts:
        return dg.SkipReason(f"no published warehouse under {data_dir} and no API key set")
    # Report a mode when its verdict or its last run changed: the check's history then holds the
    # moments it turned red or green, not one row per tick.
    seen = json.loads(context.cursor or "{}")
    changed = [v for v in verdicts if seen.get(v.mode) != [v.passed, v.run_id]]
    said = "; ".join(f"{v.mode}: {'fresh' if v.passed else 'STALE'} ({v.metadata['last_success']})" for v in verdicts)
    if not changed:
        return dg.SkipReason(f"unchanged: {said}")
    seen.update({v.mode: [v.passed, v.run_id] for v in changed})
    context.log.info(said)
    return dg.SensorResult(asset_events=[v.evaluation() for v in changed], cursor=json.dumps(seen))
