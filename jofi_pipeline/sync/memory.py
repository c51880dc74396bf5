"""What earlier runs learned about records they could not fetch by id, and when to ask again.

A 404 for a record never held is not a deletion: it is remembered (warehouse `fetch_outcomes`) with
the inputs it was asked for, and not asked again until they change. A record whose every attempt
fails is remembered too, and after QUARANTINE_AFTER_RUNS runs in a row with the same inputs it is
quarantined: left out of the plans, so one record JOFI always refuses can never fail or block a run.
Both are asked again when their inputs change, or on a full refresh.

Inputs:
- a record (invitation, test taker, profile): md5 of its own row and the rows that refer to it
  (the tables holding a column named like its by-id route's parameter, e.g. `test_taker_id`) —
  a new invitation naming a test taker, or a refreshed one, is a reason to ask again;
- a derived object (scorecard, job-fit report): its test taker's completions hash and profile id,
  the same inputs fetch_state keys on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jofi_pipeline import entities
from jofi_pipeline.warehouse import ENTITY_TABLES, RunWriter
from jofi_pipeline.warehouse.fetch_outcomes import Remembered
from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import FETCH_OUTCOMES, QUARANTINE_AFTER_RUNS


def record_key(key: Any) -> str:
    """A record's key as fetch_outcomes holds it: `123`, `CNP1`, or `123/JOFI-295-AS` for a scorecard."""
    return "/".join(str(part) for part in key) if isinstance(key, tuple) else str(key)


def derived_inputs(row: Mapping[str, Any]) -> str:
    """A derived object's inputs from its plan row (see DERIVED_INPUTS_SQL: the same text)."""
    return f"{row.get('completions_hash') or ''}|{row.get('career_navigation_profile_id') or ''}"


DERIVED_INPUTS_SQL = "coalesce(p.completions_hash, '') || '|' || coalesce(p.career_navigation_profile_id, '')"
_DERIVED_KEY_SQL = {
    "scorecards": "CAST(p.test_taker_id AS VARCHAR) || '/' || p.score_profile_short_name",
    "job_fit_reports": "CAST(p.test_taker_id AS VARCHAR)",
}


def referring(entity: str) -> list[tuple[str, str]]:
    """(table, column) pairs that hold `entity`'s id: its own `id` and the other records naming it."""
    route = entities.entity(entity).by_id
    param = route.param if route else None
    found = [(entity, "id")]
    for other in entities.INBOX_ENTITIES:
        if other != entity and param and param in ENTITY_TABLES[other].column_names:
            found.append((other, param))
    return found


def record_inputs_sql(entity: str) -> str:
    """`$keys` (record keys as text) -> (record_key, md5 of its own row and the rows referring to it)."""
    parts = [
        f"coalesce((SELECT string_agg(r._raw::VARCHAR, ',' ORDER BY r._raw::VARCHAR) FROM {ident(table)} r "
        f"WHERE CAST(r.{ident(column)} AS VARCHAR) = k.record_key), '')"
        for table, column in referring(entity)
    ]
    return (
        f"SELECT k.record_key, md5(concat_ws('|', {', '.join(parts)})) "
        "FROM (SELECT DISTINCT unnest($keys::VARCHAR[]) AS record_key) k"
    )


def without_remembered(sql: str, entity: str) -> str:
    """The fetch plan `sql` of `entity`, minus what fetch_outcomes says to leave alone this run.

    Derived objects: the row's own inputs decide (joined in SQL). Records: `$skip`, the keys
    FetchMemory.skip() found unchanged. A full refresh (`$full`) leaves nothing out.
    """
    if entity in _DERIVED_KEY_SQL:
        return f"""
            SELECT p.* FROM ({sql}) p
            WHERE $full OR NOT EXISTS (
                SELECT 1 FROM {ident(FETCH_OUTCOMES.name)} o
                WHERE o.entity = '{entity}' AND o.record_key = {_DERIVED_KEY_SQL[entity]}
                  AND o.inputs = {DERIVED_INPUTS_SQL}
                  AND (o.outcome = 'not_found' OR o.failed_runs >= {QUARANTINE_AFTER_RUNS}))
        """
    return f"SELECT * FROM ({sql}) AS p(_key) WHERE $full OR CAST(p._key AS VARCHAR) NOT IN (SELECT unnest($skip::VARCHAR[]))"


@dataclass
class FetchMemory:
    """The fetch_outcomes rows as this run began (a handful, however large the account)."""

    writer: RunWriter
    full: bool = False
    rows: dict[str, dict[str, Remembered]] = field(default_factory=dict)
    # Records that failed in this run (remembered as failing since it began): a later ask in the
    # same run that brings one in forgets it, as it does one remembered from earlier runs.
    failed_now: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def load(cls, writer: RunWriter, full: bool = False) -> FetchMemory:
        memory = cls(writer, full)
        for row in writer.remembered():
            memory.rows.setdefault(row.entity, {})[row.record_key] = row
        return memory

    def knows(self, entity: str, key: str) -> bool:
        return key in self.rows.get(entity, {}) or (entity, key) in self.failed_now

    def note_failed(self, entity: str, key: str) -> None:
        self.failed_now.add((entity, key))

    def skip(self, entity: str) -> list[str]:
        """Record keys to leave out of this run's plans: not found or quarantined, inputs unchanged."""
        if self.full:
            return []
        candidates = {k: r for k, r in self.rows.get(entity, {}).items() if r.skipped}
        if not candidates:
            return []
        now = self.inputs(entity, candidates)
        return sorted(k for k, r in candidates.items() if now.get(k) == r.inputs)

    def inputs(self, entity: str, keys: Iterable[str]) -> dict[str, str]:
        """record_key -> the record's inputs now (records only; derived objects carry theirs)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        sql = record_inputs_sql(entity).replace("$keys", "?")
        return dict(self.writer.query(sql, [keys]))

    def retry_on_full(self) -> dict[str, list[str]]:
        """On a full refresh: remembered record keys (not derived) to ask again by id."""
        if not self.full:
            return {}
        return {
            entity: list(rows)
            for entity, rows in self.rows.items()
            if entity in entities.INBOX_ENTITIES and rows
        }
