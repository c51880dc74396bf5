"""The charts people look for, drawn from one mode's published database (read-only).

Used twice: `jofi-pipeline report` puts them in one HTML file, and each sync puts the one that
belongs to an asset on that asset's page (invitation_funnel, sync_coverage, scores_long).
Always one mode: live and test never share a picture.
"""

from __future__ import annotations

from jofi_pipeline.entities import CAPPED_LISTS
from jofi_pipeline.report import charts
from jofi_pipeline.warehouse import PublishedReader

BINS = 10


def funnels(reader: PublishedReader, mode: str) -> list[str]:
    """The funnel's totals and its weeks; the weeks read once (the invitation_funnel view is computed per query)."""
    weeks = reader.funnel_by_week()
    return [_funnel_totals(reader.funnel_totals(), mode, weeks), _funnel_weeks(mode, weeks)]


def _funnel_totals(totals, mode: str, weeks: list[tuple]) -> str:
    note = f"{len(weeks)} most recent ISO weeks shown below" if weeks else "no invitations yet"
    return charts.bars(f"Invitation funnel ({mode}, all weeks)", totals, note=note)


def _funnel_weeks(mode: str, weeks: list[tuple]) -> str:
    labels = [f"{w[0]:%m-%d}" for w in weeks]
    series = {"invited": [w[1] for w in weeks], "accepted": [w[2] for w in weeks],
              "completed": [w[3] for w in weeks], "with profile": [w[4] for w in weeks]}
    return charts.lines(f"Invitation funnel by week ({mode})", labels, series, y_label="invitations (week of creation)")


def coverage(reader: PublishedReader, mode: str) -> str:
    rows = reader.coverage_over_time(CAPPED_LISTS)
    runs = list(dict.fromkeys((run_id, at) for run_id, at, *_ in rows))
    index = {run_id: i for i, (run_id, _) in enumerate(runs)}
    series: dict[str, list] = {}
    for run_id, _, entity, total, held in rows:
        for name, value in ((f"{entity}: API total", total), (f"{entity}: held", held)):
            series.setdefault(name, [None] * len(runs))[index[run_id]] = value
    labels = [f"{at:%m-%d %H:%M}" if at else run_id[:8] for run_id, at in runs]
    return charts.lines(f"Coverage of the capped lists over the last {len(runs)} syncs ({mode})", labels, series,
                        y_label="records")


def scores(reader: PublishedReader, mode: str) -> list[str]:
    edges = [i * 10 / BINS for i in range(BINS + 1)]
    return [
        charts.histogram(f"{score} ({mode})", counts, edges, note=f"{sum(counts)} test takers with a score, 0-10")
        for score, counts in reader.score_histograms(BINS).items()
    ]
