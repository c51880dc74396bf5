"""One multi-asset materializes every warehouse table of a mode in one run.

The tables are separate assets (so the UI shows each with its row count and checks) but one
computation: a sync is a single transaction-like unit with a single DuckDB writer, and it
publishes all tables together or none.
"""


import asyncio
import dataclasses

import dagster as dg

from jofi_pipeline.defs import freshness
from jofi_pipeline.defs.checks import check_specs, gate_results, run_checks
from jofi_pipeline.defs.partitions import MODE_TAG, mode_partitions
from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.defs.metadata import relation_metadata
from jofi_pipeline.defs.tables import asset_key, source_spec, table_specs, view_specs
from jofi_pipeline.settings import parse_mode
from jofi_pipeline.sync import SyncFailed, head_start, swallowed
from jofi_pipeline.sync.setup import score_profiles_in, sync_with
from jofi_pipeline.sync.attempts import record_refusal
from jofi_pipeline.sync.explain import expected, explain
from jofi_pipeline.warehouse import ModePaths, PublishedWarehouse, identity
from jofi_pipeline.warehouse.tables import TABLES
from jofi_pipeline.warehouse.views import VIEWS
from jofi_pipeline.webhooks import watch_log

FULL_REFRESH_TAG = "jofi/full_refresh"
# Backfill one (newly enabled) score profile: limits the run's scorecard fan-out to it.
SCORE_PROFILE_TAG = "jofi/score_profile"


# The JOFI API, upstream of every entity table (an external asset: Dagster never materializes it).
jofi_api = source_spec()


class SyncConfig(dg.Config):
    """Run config: `full_refresh: true` refetches everything instead of only what may have changed."""

    full_refresh: bool = False
    # Score profile short name(s), comma-separated: fetch only their scorecards (a one-profile backfill).
    score_profile: str = ""
    # Set by the jofi_webhook_events sensor: {entity: [ids]} to fetch by id instead of a full run.
    targets: dict[str, list[str]] | None = None


@dg.multi_asset(
    name="jofi_warehouse",
    specs=table_specs() + view_specs(),
    check_specs=check_specs(),
    partitions_def=mode_partitions,
    group_name=None,
    can_subset=False,
    description="Sync one mode of the JOFI API into its DuckDB + Parquet warehouse and publish it.",
)
def jofi_warehouse(context: dg.AssetExecutionContext, config: SyncConfig, jofi: JofiSyncResource):
    # A stopped run ends stopped even when Dagster's interruption lands inside a DuckDB statement
    # on this thread, which raises "Query interrupted" in its place (sync/swallowed.py). Noted
    # around each step of the generator, not once: Dagster puts its handler in afresh for each
    # `next()` and takes it out after, so a handler wrapped once was gone after the first result.
    steps = _materialize(context, config, jofi)
    try:
        while True:
            with swallowed.noting():
                try:
                    result = next(steps)
                except StopIteration:
                    return
                except Exception as exc:
                    swallowed.reraise(exc)
                    raise
            yield result
    finally:
        steps.close()


def _materialize(context: dg.AssetExecutionContext, config: SyncConfig, jofi: JofiSyncResource):
    mode = parse_mode(context.partition_key)
    if context.run.tags.get(MODE_TAG) != mode:  # launched from the UI or a backfill: say it, as the others do
        context.instance.add_run_tags(context.run.run_id, {MODE_TAG: mode})
    full = config.full_refresh or context.run.tags.get(FULL_REFRESH_TAG, "").lower() in ("1", "true", "yes")
    options = jofi.options(full_refresh=full, score_profiles=score_profiles_asked(config, context.run.tags))
    if config.targets is not None:
        options = dataclasses.replace(options, targets=config.targets)
    try:
        head_started = head_start.take(mode)  # a CLI sync's, begun while Dagster loaded (sync/head_start.py)
        if head_started is not None:
            report = head_started.report(context.log.info)  # its lines, then its report or its error
        store = jofi.store(mode)  # a malformed publish URL stops here, before any request
        if head_started is None:
            report = asyncio.run(sync_with(jofi, mode, store, options, context.log.info))
    except Exception as exc:
        swallowed.reraise(exc)  # a stop DuckDB raised its own error for ends as the stop, not a failure
        if isinstance(exc, SyncFailed):
            # A refused publish shows each integrity rule as judged on the work database (the
            # blocking checks, failed), and the published copy is unchanged.
            yield from gate_results(exc.findings, mode)
        elif expected(exc):  # refused before the sync began (a bad key or URL, a malformed publish URL)
            record_refusal(ModePaths(jofi.data_root(), mode), explain(exc))
        # One line a person can act on (never the key); a bug keeps its traceback as the cause.
        raise sync_failure(exc) from (None if expected(exc) else exc)

    published = PublishedWarehouse(mode, store.data_dir)
    gaps = {c.entity: c for c in report.gaps}
    with published.open() as reader:
        row_counts = reader.row_counts()
        for table in TABLES:
            yield dg.MaterializeResult(
                asset_key=asset_key(table),
                metadata={
                    **relation_metadata(reader, table, mode, row_counts[table]),
                    # The same counts as sync_runs.rows_inserted / rows_updated and the CLI summary.
                    "inserted": report.inserted.get(table, 0),
                    "updated": report.updated.get(table, 0),
                    "sync_run_id": report.run_id,
                    "sync_status": report.status,
                    "requests": report.requests_total,
                    "fetch_and_merge_seconds": round(report.seconds, 3),
                    "publish_seconds": round(report.publish_seconds or 0.0, 3),
                    **({"api_total_count": gaps[table].api_total_count or 0} if table in gaps else {}),
                    "published_path": str(published.path),
                    **remote_metadata(report),
                    **({"schema_drift": report.drift[table].to_dict()} if report.drift.get(table) else {}),
                },
            )
        for view in VIEWS:
            yield dg.MaterializeResult(asset_key=asset_key(view.name), metadata={
                **relation_metadata(reader, view.name, mode), "sync_run_id": report.run_id, "published_path": str(published.path),
            })
        whose = identity.recorded(published.paths)
        yield from run_checks(reader, mode, watch_log.summary(published.paths.inbox), whose.account_id if whose else None)
        last = reader.last_published_run()  # freshness need not open the file again for it
    yield freshness.evaluate_modes(
        published.paths.data_dir, freshness.utc_now(), include_unpublished=False, known={mode: last}
    ).result()
    if report.remote is not None and not report.remote.ok:
        # The local publish stands (and is recorded above); the run fails so the operator sees
        # that S3 readers are behind, and a retry or the next run uploads a new complete version.
        raise dg.Failure(description=report.remote.describe(), metadata=remote_metadata(report))


def sync_failure(exc: Exception) -> dg.Failure:
    """The one line a person can act on (the same as the CLI's and sync_runs.error), never the key.

    A failure the project raises on purpose needs no traceback; anything else (a bug) keeps its
    cause, so the step's event log still shows where it happened.
    """
    reason = exc.reason if isinstance(exc, SyncFailed) else explain(exc)
    return dg.Failure(description=reason, metadata={"run_id": getattr(exc, "run_id", None) or ""})


def remote_metadata(report) -> dict:
    """Where the object-store copy is, when JOFI_PUBLISH_URL is set."""
    outcome = report.remote
    if outcome is None:
        return {}
    return {
        "remote_url": outcome.url,
        "remote_version": outcome.version if outcome.ok else (outcome.previous or ""),
        "remote_upload": "uploaded" if outcome.ok else f"failed: {outcome.error}",
    }


def score_profiles_asked(config: SyncConfig, tags: dict[str, str]) -> tuple[str, ...]:
    """Short names from run config `score_profile` or the `jofi/score_profile` tag (config wins)."""
    return score_profiles_in(config.score_profile or tags.get(SCORE_PROFILE_TAG, ""))
