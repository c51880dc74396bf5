"""The summary's time line: the printed parts add up to the printed whole, whatever the durations."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from jofi_pipeline.runs import SyncOutcome, time_line

seconds = st.floats(min_value=0, max_value=10_000, allow_nan=False)


@given(start_up=seconds, fetch=seconds, publish=seconds, rest=seconds)
def test_the_printed_parts_add_up_to_the_printed_whole(start_up, fetch, publish, rest):
    outcome = SyncOutcome("live", "r", seconds=start_up + fetch + publish + rest, startup_seconds=start_up,
                          fetch_and_merge_seconds=fetch, publish_seconds=publish)
    parts = [float(x) for x in re.findall(r"(\d+\.\d)s", time_line(outcome))]
    assert len(parts) == 5
    assert round(sum(parts[:4]), 1) == parts[4]
    assert abs(parts[4] - outcome.seconds) <= 0.05 + 1e-6  # the whole as measured, to 0.1 s
    for shown, measured in zip(parts, (start_up, fetch, publish, outcome.seconds - start_up - fetch - publish)):
        assert abs(shown - measured) < 0.1 + 1e-6


def test_the_seen_failure_adds_up():
    # Seen under load: each part rounded alone printed 1.2 + 7.9 + 3.1 + 10.7 = 23.1.
    outcome = SyncOutcome("live", "r", seconds=23.096, startup_seconds=1.249, fetch_and_merge_seconds=7.949,
                          publish_seconds=3.149)
    line = time_line(outcome)
    parts = [float(x) for x in re.findall(r"(\d+\.\d)s", line)]
    assert parts[4] == 23.1 and round(sum(parts[:4]), 1) == 23.1, line


@given(start_up=seconds, fetch=seconds, publish=seconds, rest=seconds, alongside=seconds)
def test_a_head_started_sync_says_how_long_dagsters_start_up_ran_alongside_outside_the_sum(
        start_up, fetch, publish, rest, alongside):
    outcome = SyncOutcome("live", "r", seconds=start_up + fetch + publish + rest, startup_seconds=start_up,
                          fetch_and_merge_seconds=fetch, publish_seconds=publish, alongside_seconds=alongside)
    line = time_line(outcome)
    parts = [float(x) for x in re.findall(r"(\d+\.\d)s", line)]
    assert len(parts) == 6 and round(sum(parts[:4]), 1) == parts[4]  # the overlap is not added in
    assert line.endswith(f"(Dagster's start-up, {parts[5]:.1f}s, ran alongside the sync)")
    assert abs(parts[5] - alongside) <= 0.05 + 1e-6
