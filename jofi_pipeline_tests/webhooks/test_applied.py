"""Inbox ids are marked applied only by a run that committed them; a failed run leaves them pending."""

from __future__ import annotations

import pytest

from jofi_pipeline.sync import SyncFailed
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.e2e.helpers import ids, published, sync
from jofi_pipeline_tests.webhooks.helpers import SECRET, ReceiverThread


def test_a_failed_run_leaves_event_ids_pending_and_the_next_run_applies_them(make_simulator, monkeypatch, tmp_path):
    sim = make_simulator(test_takers=10, seed=17, daily_invitations=80)
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    sync(sim, "live", tmp_path)
    with ReceiverThread(tmp_path) as receiver:
        sim.set_webhooks(url=receiver.url, secret=SECRET)
        summary = sim.advance(1)
        assert sim.flush_webhooks()["flushed"]
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
        pending = len(inbox.unapplied())
    assert pending > 0

    # A fatal answer (the other mode) on test takers by id: the invitations by id were committed before it.
    sim.set_faults(force_mode="test", routes=["/test-takers/{id}"])
    with pytest.raises(SyncFailed):
        sync(sim, "live", tmp_path)
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
        assert len(inbox.unapplied()) == pending

    sim.clear_faults()
    sync(sim, "live", tmp_path)
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as inbox:
        assert inbox.unapplied() == []
    with published(tmp_path, "live") as con:
        assert set(summary["invitations_created"]) <= ids(con, "invitations")
        assert set(summary["test_takers_created"]) <= ids(con, "test_takers")
