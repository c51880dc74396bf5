"""`make demo`: the simulator, a full sync of both modes, a summary, two analyst queries."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from jofi_pipeline import settings
from jofi_pipeline.analyst import run_query, status_text
from jofi_pipeline.runs import SyncJobFailed, print_summary, sync_mode
from jofi_pipeline.warehouse import ModePaths

EXAMPLE_QUERIES = [
    (
        "Invitation funnel by team (live)",
        "SELECT team_display_name AS team, sum(invited)::BIGINT AS invited, sum(accepted)::BIGINT AS accepted, "
        "sum(all_assessments_completed)::BIGINT AS completed, sum(with_profile)::BIGINT AS profiles "
        "FROM invitation_funnel GROUP BY ALL ORDER BY invited DESC",
    ),
    # A test taker's score is the same under every profile; what a profile changes is the band it is
    # read against (averaging the score alone printed the same figures for every profile).
    (
        "Top-level scores at or above each score profile's yellow band, per section (live)",
        "SELECT score_profile_short_name AS profile, section, count(*) AS scores, "
        "round(avg(test_taker_score), 2) AS avg_score, round(avg(yellow_band), 2) AS avg_yellow_band, "
        "round(100 * avg((test_taker_score >= yellow_band)::INT), 1) AS pct_at_or_above_band "
        "FROM scores_long WHERE NOT is_facet AND test_taker_score IS NOT NULL "
        "GROUP BY ALL ORDER BY profile, section",
    ),
]


# The demo's account: the simulator's defaults, so `./jofi-pipeline simulate` serves the same one
# and the README's commands run on top of what `make demo` synced.
DEMO_SIMULATOR: dict = {}


def run_demo(*, test_takers: int = 200, data_dir: Path | None = None) -> int:
    from jofi_pipeline.simulator.process import SimulatorProcess

    # The commands it suggests must run as printed: name the folder when it is not the default.
    where = f" --data-dir {shlex.quote(str(data_dir))}" if data_dir is not None else ""
    data_dir = data_dir or settings.data_dir()
    print(f"Starting the JOFI simulator ({test_takers} test takers in the live world)...", file=sys.stderr)
    with SimulatorProcess(**{**DEMO_SIMULATOR, "test_takers": test_takers}) as sim:
        os.environ[settings.ENV_BASE_URL] = sim.base_url
        os.environ[settings.ENV_LIVE_KEY] = sim.live_key
        os.environ[settings.ENV_TEST_KEY] = sim.test_key
        print(f"Simulator at {sim.base_url}; warehouse root {data_dir.resolve()}", file=sys.stderr)
        for mode in settings.MODES:
            try:
                outcome = sync_mode(mode, data_dir=data_dir)
            except SyncJobFailed as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print_summary(outcome)
    print()
    print(status_text(data_dir=data_dir))
    for title, query in EXAMPLE_QUERIES:
        print(f"\n-- {title}\n-- {settings.CLI} sql \"{query}\"{where}")
        print(run_query(query, "live", data_dir=data_dir))
    print(
        f"\nQuery it yourself:  {settings.CLI} sql \"SELECT * FROM test_taker_progress LIMIT 10\" --mode live{where}"
        f"\nWhat each column means:  {settings.CLI} describe test_taker_progress{where}"
        f"\nor open {ModePaths(data_dir, 'live').published_db} read-only from the DuckDB CLI, a BI tool or pandas."
        f"\nCharts:  {settings.CLI} report --mode live{where}   (one HTML file, nothing fetched)"
        f"\nThese syncs in Dagster's UI:  {settings.CLI} ui   (runs of jofi_sync, lineage, checks)"
    )
    return 0
