"""Ids a run fetches by id beyond the capped lists: webhook events, imported ids, the watcher's.

Two ways in, one module that says which ids; the runner fetches them:
- `SyncOptions.targets` set (a sensor run): skip the lists, fetch exactly those invitations, test
  takers and profiles by id, then the scorecards and job-fit reports of those test takers.
- otherwise (a normal run): the inbox's unapplied ids are fetched by id right after the lists, so
  the run's usual by-id steps (referenced test takers, missing profiles, scorecards) see them.
Inbox rows are marked applied only after the run's data is committed and nothing failed; a run
that fails leaves them pending for the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jofi_pipeline import entities
from jofi_pipeline.webhooks.inbox import Inbox, group_ids

log = logging.getLogger("jofi_pipeline.sync")


def typed_targets(raw: Mapping[str, Any]) -> dict[str, list]:
    """Validate run-config targets ({entity: [ids as text or int]}) into typed, distinct id lists.

    An id that breaks the registry's rule is left out with a warning (never sent, never stored).
    """
    typed: dict[str, list] = {}
    for entity, ids in raw.items():
        if entity not in entities.INBOX_ENTITIES:
            raise ValueError(f"unknown target entity {entity!r}; use {', '.join(entities.INBOX_ENTITIES)}")
        typed[entity] = _valid_only(entity, ids, "run config targets")
    return typed


def _valid_only(entity: str, ids: Any, source: str) -> list:
    valid, invalid = entities.split_valid(entity, ids)
    if invalid:
        shown = ", ".join(repr(v)[:40] for v in invalid[:3])
        log.warning("%s: %d invalid %s id(s) skipped (e.g. %s): an id must be %s", source, len(invalid), entity,
                    shown, entities.entity(entity).id_rule)
    return valid


@dataclass
class InboxWork:
    """What this run took on: ids per entity, and the inbox snapshot (seq) they came from."""

    targeted: bool
    ids: dict[str, list] = field(default_factory=dict)
    inbox: Path | None = None  # the mode's inbox, when it exists
    up_to_seq: int = 0

    @classmethod
    def take(cls, inbox_path: Path, targets: Mapping[str, Any] | None) -> InboxWork:
        """The run's by-id work: `targets` when given (a targeted run), else the inbox's pending ids."""
        work = cls(targeted=targets is not None, inbox=inbox_path if inbox_path.exists() else None)
        if targets is not None:
            work.ids = typed_targets(targets)
        if work.inbox is not None:
            with Inbox.open(work.inbox, create=False) as inbox:
                work.up_to_seq = inbox.last_seq()
                if not work.targeted:
                    pending = group_ids(inbox.unapplied(work.up_to_seq))
                    # Rows an older version stored unchecked: skipped (and marked applied with the
                    # rest after a successful run), so one bad row can never stop every sync.
                    work.ids = {e: _valid_only(e, ids, f"inbox {work.inbox}") for e, ids in pending.items()}
        return work

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.ids.values())

    def to_fetch(self, in_window: Mapping[str, Collection] | None = None) -> dict[str, list]:
        """Per inbox entity, the ids to fetch by id: those the lists did not just bring."""
        in_window = in_window or {}
        return {
            entity: [i for i in self.ids.get(entity, ()) if i not in in_window.get(entity, ())]
            for entity in entities.INBOX_ENTITIES
        }

    def describe(self) -> str:
        return ", ".join(f"{len(v)} {k}" for k, v in self.ids.items())

    def mark_applied(self, run_id: str) -> None:
        """After the data is committed: these inbox rows need no more fetching. Best effort."""
        if self.inbox is None or not self.up_to_seq:
            return
        only = {e: {str(i) for i in ids} for e, ids in self.ids.items()} if self.targeted else None
        try:
            with Inbox.open(self.inbox, create=False) as inbox:
                marked = inbox.mark_applied(run_id, self.up_to_seq, only)
        except Exception as exc:  # the rows stay pending; the next run fetches them again, harmlessly
            log.warning("could not mark inbox ids applied (%s); the next run refetches them", type(exc).__name__)
            return
        if marked:
            log.info("inbox: %d ids marked applied by run %s", marked, run_id)
