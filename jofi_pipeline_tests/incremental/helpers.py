"""What the incremental tests count: requests per route at the simulator, and truth per test taker."""

from __future__ import annotations

from pathlib import Path

import duckdb

SCORECARD = "GET /test-takers/{id}/scorecard"
JOB_FIT = "GET /test-takers/{id}/job-fit-report"
TEST_TAKER = "GET /test-takers/{id}"


def requests(sim, route: str) -> int:
    return sim.stats()["routes"].get(route, {}).get("total", 0)


def scoring(test_taker: dict) -> list[dict]:
    """The assignments JOFI scores (`is_used_for_scoring` not false): what scorecards are made of."""
    return [a for a in test_taker.get("assigned_assessments") or [] if a.get("is_used_for_scoring") is not False]


def inputs(test_taker: dict) -> tuple:
    """What a test taker's scorecards and job-fit report depend on, as the API has it."""
    completions = sorted((a["assessment"]["id"], a["id"], a.get("completed_at")) for a in scoring(test_taker))
    return tuple(completions), test_taker.get("career_navigation_profile_id")


def completed(test_taker: dict) -> bool:
    """Whether the test taker has completed an assessment that is scored."""
    return any(a.get("completed_at") for a in scoring(test_taker))


def by_id(truth: dict) -> dict[int, dict]:
    return {t["id"]: t for t in truth["test_takers"]}


def short_names(truth: dict) -> list[str]:
    return [sp["short_name"] for sp in truth["score_profiles"]]


def work_db(data_dir: Path, mode: str = "live") -> duckdb.DuckDBPyConnection:
    """The working database (the system of record), read-only: only between runs."""
    return duckdb.connect(str(data_dir / mode / "work" / "jofi_work.duckdb"), read_only=True)


def published(data_dir: Path, mode: str = "live") -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True)
