"""Staleness that shows on its own: the `freshness` check of `sync_runs`.

One check for every mode (not one per partition): it fails when a mode's published warehouse is
older than FRESHNESS_WINDOW. A stale live warehouse is an ERROR (red): the nightly is what keeps
it fresh. A stale test warehouse alone is a WARN: test mode is synced by hand. The numbers are
keyed by mode (`age_hours (live)`), so each plot draws one mode.

A sync evaluates it after it publishes (so it turns green at once), and the `jofi_freshness`
sensor evaluates it every 5 minutes from the published files alone, without a run: a nightly that
stopped (schedule off, daemon down, every run failing) turns it red within minutes, whether or
not anything else runs.

Why one check and not per partition: Dagster records a sensor's (runless) evaluation of a
partitioned check once per partition only (a unique index on check, run id and partition; the
run id of a runless event is empty), so the second report for `live` would fail; and the check's
summary shows its latest evaluation of any partition, so a fresh test would hide a stale live.
Why not Dagster's `FreshnessPolicy`: its time-window evaluation reads an asset's latest
materialization of *any* partition, so a test sync would keep a stale live warehouse green.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from jofi_pipeline import settings
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.tables import asset_key
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseError
from jofi_pipeline.warehouse.published import RunSummary

CHECK_NAME = "freshness"
FRESHNESS_WINDOW = timedelta(hours=26)
SENSOR_INTERVAL_SECONDS = 5 * 60
SEVERITY = {"live": dg.AssetCheckSeverity.ERROR, "test": dg.AssetCheckSeverity.WARN}


@dataclass(frozen=True)
class Verdict:
    """One mode's answer."""

    mode: str
    passed: bool
    metadata: dict
    run_id: str
    what_to_do: str

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return SEVERITY[self.mode]


@dataclass(frozen=True)
class Freshness:
    """Every mode's answer, as one check result."""

    verdicts: tuple[Verdict, ...]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        failed = [v.severity for v in self.verdicts if not v.passed]
        return dg.AssetCheckSeverity.ERROR if dg.AssetCheckSeverity.ERROR in failed else dg.AssetCheckSeverity.WARN

    @property
    def red(self) -> bool:
        """Failed with ERROR severity: what the UI shows red."""
        return not self.passed and self.severity == dg.AssetCheckSeverity.ERROR

    @property
    def state(self) -> dict:
        """What the sensor remembers between ticks: each mode's verdict and last run."""
        return {v.mode: [v.passed, v.run_id] for v in self.verdicts}

    @property
    def metadata(self) -> dict:
        out: dict = {}
        for v in self.verdicts:  # every key by mode: two modes' texts must not overwrite each other
            out.update({f"{key} ({v.mode})": value for key, value in v.metadata.items() if key != "evaluated_at"})
            out["evaluated_at"] = v.metadata["evaluated_at"]
        out["what_to_do"] = " ".join(v.what_to_do for v in self.verdicts if v.what_to_do)
        return out

    def result(self) -> dg.AssetCheckResult:
        """Inside a sync run."""
        return dg.AssetCheckResult(
            asset_key=asset_key("sync_runs"), check_name=CHECK_NAME, passed=self.passed,
            severity=self.severity, metadata=self.metadata,
        )

    def evaluation(self) -> dg.AssetCheckEvaluation:
        """Reported by the sensor, without a run."""
        return dg.AssetCheckEvaluation(
            asset_key=asset_key("sync_runs"), check_name=CHECK_NAME, passed=self.passed,
            severity=self.severity, metadata=self.metadata,
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
        what_to_do=what_to_do,
        metadata={
            "last_success": str(finished) if finished else "never",
            "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
            "window_hours": FRESHNESS_WINDOW.total_seconds() / 3600,
            "evaluated_at": now.isoformat(timespec="seconds"),
        },
    )


def _hours(age: timedelta | None) -> str:
    return "never" if age is None else f"{age.total_seconds() / 3600:.1f} h"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def evaluate_modes(
    data_dir: Path, now: datetime, *, include_unpublished: bool = True, known: dict[str, RunSummary | None] | None = None,
) -> Freshness:
    """A verdict for each mode that has a published warehouse, or whose key is set (never synced).

    A sync leaves out modes never published: syncing test first must not fail on live. `known`:
    the last published run of modes the caller has just read (a sync, its own mode's).
    """
    verdicts = []
    for mode in settings.MODES:
        if known and mode in known:
            verdicts.append(verdict(mode, known[mode], now))
            continue
        published = PublishedWarehouse(mode, data_dir)
        if not published.exists():
            if include_unpublished and settings.api_key(mode) is not None:
                verdicts.append(verdict(mode, None, now, why_missing=f"No {mode} sync has published yet ({published.path})."))
            continue
        try:
            with published.open() as reader:
                last = reader.last_published_run()
        except WarehouseError as exc:
            verdicts.append(verdict(mode, None, now, why_missing=f"Cannot read {published.path}: {exc}."))
            continue
        verdicts.append(verdict(mode, last, now))
    return Freshness(tuple(verdicts))


@dg.sensor(
    name="jofi_freshness",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: is each mode's published warehouse younger than 26 h? Reports the freshness "
    "check of sync_runs without starting a run (live: red when stale; test: a warning).",
)
def jofi_freshness(context: dg.SensorEvaluationContext, jofi: JofiSyncResource) -> dg.SensorResult | dg.SkipReason:
    data_dir = Path(jofi.data_dir) if jofi.data_dir else settings.data_dir()
    freshness = evaluate_modes(data_dir, utc_now())
    if not freshness.verdicts:
        return dg.SkipReason(f"no published warehouse under {data_dir} and no API key set")
    said = "; ".join(f"{v.mode}: {'fresh' if v.passed else 'STALE'} ({v.metadata['last_success']})" for v in freshness.verdicts)
    # Report when a verdict or a last run changed, so the check's history holds the moments it
    # turned red or green rather than one row per tick; while it is red, on every tick, so a
    # sync's own evaluation of its mode alone never leaves the summary green.
    if context.cursor and json.loads(context.cursor) == freshness.state and not freshness.red:
        return dg.SkipReason(f"unchanged: {said}")
    context.log.info(said)
    return dg.SensorResult(asset_events=[freshness.evaluation()], cursor=json.dumps(freshness.state))
