"""The watcher's arithmetic, without a server: turnover, missed counts, intervals, the interval parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jofi_pipeline.api import ListResult
from jofi_pipeline.webhooks.watch import (
    FIRST_INTERVAL_S,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    SAFE_SHARE,
    ListOutcome,
    PollReport,
    _next_interval,
    created_at,
    listed_ids,
    mark_of,
    missed_between,
    parse_interval,
    safe_interval_s,
)
from jofi_pipeline.webhooks.watch_log import Gap, WindowMark, format_interval

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def mark(total: int | None, listed: int = 50, newest_id: str | None = "100", at: datetime = T0, has_more: bool = True,
         newest_at: datetime | None = None, oldest_at: datetime | None = None) -> WindowMark:
    return WindowMark("invitations", at.isoformat(), total, listed, has_more, newest_id, newest_at, oldest_at)


def test_missed_is_growth_beyond_the_window_when_nothing_overlaps():
    before = mark(1000, newest_id="500")
    assert missed_between(before, mark(1073), [str(i) for i in range(600, 650)]) == 23
    assert missed_between(before, mark(1050), [str(i) for i in range(600, 650)]) == 0, "grew by exactly the window"
    assert missed_between(before, mark(1020, listed=50), ["500", *map(str, range(600, 649))]) == 0


def test_overlap_or_unknown_counts_claim_nothing():
    before = mark(1000, newest_id="500")
    still_listed = ["700", "500"]
    assert missed_between(before, mark(1100, listed=2), still_listed) == 0, "the newest seen before is still listed"
    assert missed_between(mark(None), mark(1100), ["1"]) == 0
    assert missed_between(before, mark(None), ["1"]) == 0
    timed = mark(1000, newest_id="500", newest_at=T0)
    overlapping = mark(1100, newest_id="900", oldest_at=T0 - timedelta(seconds=1))
    assert missed_between(timed, overlapping, ["900"]) == 0, "by created_at the windows overlap"
    later = mark(1100, newest_id="900", oldest_at=T0 + timedelta(seconds=1))
    assert missed_between(timed, later, ["900"]) == 50


def test_safe_interval_follows_the_turnover():
    before = mark(1000, at=T0)
    now = mark(1030, at=T0 + timedelta(hours=3))  # 10 an hour into a window of 50
    assert safe_interval_s(before, now) == pytest.approx(SAFE_SHARE * 50 / (30 / (3 * 3600)))
    assert safe_interval_s(before, mark(1000, at=T0 + timedelta(hours=3))) is None, "nothing new: no limit"
    assert safe_interval_s(None, mark(1000)) == FIRST_INTERVAL_S, "unmeasured: cautious"
    spread = mark(1000, listed=50, newest_at=T0, oldest_at=T0 - timedelta(hours=49))
    assert safe_interval_s(None, spread) == pytest.approx(SAFE_SHARE * 50 * 3600)  # one an hour, measured by created_at
    small = mark(10, listed=10, has_more=False, at=T0 + timedelta(hours=1))
    assert safe_interval_s(mark(5, listed=5, has_more=False), small) == pytest.approx(SAFE_SHARE * 30 / (5 / 3600))


def test_next_interval_override_gap_and_clamps():
    ok = {"invitations": ListOutcome("invitations", mark=mark(1), safe_s=5 * 3600)}
    assert _next_interval(ok, None, None)[0] == 5 * 3600
    interval, reason = _next_interval(ok, 24 * 3600, None)
    assert interval == 24 * 3600 and "longer than safe" in reason
    gap = Gap("invitations", "a", "b", 1000, 1150, 50, 100, 24 * 3600, None)
    gapped = {"invitations": ListOutcome("invitations", mark=mark(1), safe_s=10 * 3600, gap=gap)}
    interval, reason = _next_interval(gapped, 24 * 3600, 24 * 3600)
    assert interval == pytest.approx(24 * 3600 * SAFE_SHARE * 50 / 150) and "shortened" in reason
    assert _next_interval({"x": ListOutcome("x", mark=mark(1), safe_s=1.0)}, None, None)[0] == MIN_INTERVAL_S
    assert _next_interval({"x": ListOutcome("x", mark=mark(1))}, None, None)[0] == MAX_INTERVAL_S
    failed = {"x": ListOutcome("x", error="down")}
    assert _next_interval(failed, None, 4 * 3600)[0] == FIRST_INTERVAL_S


def test_listed_ids_and_timestamps_from_odd_items():
    """Only ids that keep the registry's rule are queued: past 2**63-1, 0, text for a number, '..' are not."""
    items = [{"id": 2**63 + 5}, {"id": 12}, {"id": "13"}, {"id": "CNP1"}, {"id": True}, {"id": None}, {"id": " "},
             "junk", {"id": 7.5}, {"id": 0}, {"id": 2**63 - 1}]
    listing = ListResult(items, total_count=9, has_more=True, capped=True, pages=1)
    assert listed_ids("test_takers", listing) == ["12", str(2**63 - 1)]
    profiles = [{"id": ".."}, {"id": "."}, {"id": "CNP1"}, {"id": "a/b"}, {"id": 5}, {"id": "CP8ABC123HIJ"}]
    assert listed_ids("career_navigation_profiles", ListResult(profiles, 6, False, False, 1)) == ["CNP1", "CP8ABC123HIJ"]
    assert created_at({"created_at": "2026-02-03T12:43:36.744Z"}) == datetime(2026, 2, 3, 12, 43, 36, 744000, tzinfo=UTC)
    assert created_at({"created_at": "2026-02-03T12:41:35.03468+00:00"}).microsecond == 34680
    assert created_at({"created_at": "yesterday"}) is None and created_at({"created_at": 5}) is None
    assert created_at({"created_at": "2026-02-03T12:00:00"}).tzinfo is UTC
    m = mark_of("test_takers", listing, T0.isoformat())
    assert m.newest_id == "12" and m.listed == len(items) and m.newest_at is None


@pytest.mark.parametrize(("text", "seconds"), [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("300", 300),
                                                (" 2H ", 7200), ("1h0m30s", 3630), ("61s", 61)])
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2x", "-5", "1.5h", "30s", "2h 30m", "..", "１h"])
def test_parse_interval_rejects_with_a_hint(text):
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


def test_report_lines_for_a_failed_poll_say_it_once():
    outcomes = {e: ListOutcome(e, error="GET /x: JOFI refused the API key", fatal=True) for e in ("a", "b", "c")}
    report = PollReport("live", T0.isoformat(), 3, outcomes, {}, 900.0, "retrying")
    assert report.outcome == "failed" and report.fatal
    assert report.lines() == ["watch live: no list could be read (3 requests); ids queued earlier stay queued",
                              "  GET /x: JOFI refused the API key"]
    assert format_interval(7380) == "2h03m" and format_interval(90) == "1m30s" and format_interval(5) == "5s"


def test_two_watchers_at_once_record_a_gap_once_and_queue_each_id_once(tmp_path):
    from jofi_pipeline.webhooks.inbox import Inbox
    from jofi_pipeline.webhooks.watch_log import PollRecord, WatchLog

    with Inbox.open(tmp_path / "events.sqlite") as inbox:
        log = WatchLog(inbox)
        first = mark(1000, at=T0)
        log.record_poll({"invitations": ["1", "2"]}, [first], [], PollRecord(first.polled_at, "ok", 3, 0, 0, 7200.0))
        later = mark(1100, at=T0 + timedelta(hours=24), newest_id="9")
        gap = Gap("invitations", first.polled_at, later.polled_at, 1000, 1100, 50, 50, 86400.0, 7200.0)
        poll = PollRecord(later.polled_at, "ok", 3, 0, 50, 7200.0)
        assert log.record_poll({"invitations": ["2", "3"]}, [later], [gap], poll) == {"invitations": 1}
        assert log.record_poll({"invitations": ["3", "4"]}, [later], [gap], poll) == {"invitations": 1}
        assert [g.missed for g in log.gaps()] == [50] and log.missed_by_entity() == {"invitations": 50}
        assert [p.missed for p in log.polls()] == [0, 50, 0]
        assert sorted(r[0] for r in inbox.read("SELECT object_id FROM pending_ids")) == ["1", "2", "3", "4"]
        assert log.windows()["invitations"] == later
