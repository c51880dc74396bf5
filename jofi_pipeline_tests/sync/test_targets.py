"""Which ids a run fetches by id: run-config targets and the inbox's pending ids."""

from __future__ import annotations

import pytest

from jofi_pipeline.sync.targets import InboxWork, typed_targets
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox


def test_targets_are_typed_by_the_registry_and_deduplicated():
    assert typed_targets({"test_takers": ["12", 12, " 13 "], "career_navigation_profiles": ["CNP1", "CNP1"]}) == {
        "test_takers": [12, 13], "career_navigation_profiles": ["CNP1"],
    }


def test_a_target_entity_that_is_not_fetched_by_id_is_refused():
    with pytest.raises(ValueError, match="unknown target entity 'scorecards'"):
        typed_targets({"scorecards": [1]})


@pytest.mark.parametrize(("raw", "kept", "rule"), [
    ({"invitations": ["0", 7]}, [7], "an integer"),
    ({"career_navigation_profiles": ["..", "CNP1"]}, ["CNP1"], "a letter"),
])
def test_target_ids_that_break_the_rule_are_left_out_and_said_so(raw, kept, rule, caplog):
    (entity, _), = raw.items()
    assert typed_targets(raw) == {entity: kept}
    assert f"1 invalid {entity} id(s) skipped" in caplog.text and rule in caplog.text


def test_no_inbox_means_no_work(tmp_path):
    work = InboxWork.take(ModePaths(tmp_path, "live").inbox, None)
    assert (work.targeted, work.total, work.inbox) == (False, 0, None)
    assert work.to_fetch() == {"invitations": [], "test_takers": [], "career_navigation_profiles": []}


def test_pending_ids_are_typed_and_ids_that_break_the_rule_are_skipped(tmp_path):
    path = ModePaths(tmp_path, "live").inbox
    with Inbox.open(path) as inbox:
        inbox.add_imported("test_takers", ["5", "6"])
        inbox.add_imported("career_navigation_profiles", ["CNP9"])
        with inbox.transaction() as con:  # rows an older version queued unchecked
            con.executemany("INSERT INTO pending_ids (entity, object_id, source, added_at) VALUES (?, ?, 'import', '')",
                            [("test_takers", "x/y"), ("career_navigation_profiles", "../etc")])
    work = InboxWork.take(path, None)
    assert work.ids == {"test_takers": [5, 6], "career_navigation_profiles": ["CNP9"]}
    assert work.to_fetch({"test_takers": [6]}) == {
        "invitations": [], "test_takers": [5], "career_navigation_profiles": ["CNP9"],
    }
    work.mark_applied("run-1")
    with Inbox.open(path, create=False) as inbox:
        assert inbox.counts() == {}, "a normal run applies everything it took, the skipped ids too"


def test_a_targeted_run_marks_only_its_own_ids_applied(tmp_path):
    path = ModePaths(tmp_path, "live").inbox
    with Inbox.open(path) as inbox:
        inbox.add_imported("test_takers", ["5", "6"])
    work = InboxWork.take(path, {"test_takers": [5]})
    assert work.targeted and work.ids == {"test_takers": [5]}
    work.mark_applied("run-1")
    with Inbox.open(path, create=False) as inbox:
        assert inbox.counts() == {"test_takers": 1}
