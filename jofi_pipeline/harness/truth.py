"""Which records the published warehouse holds, against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

from jofi_pipeline.entities import LISTS
from jofi_pipeline.warehouse import PublishedWarehouse


def truth_ids(truth: dict, entity: str) -> set:
    return {record["id"] for record in truth[entity]}


def held_ids(data_dir: Path, mode: str, entity: str) -> set:
    """Typed ids of `entity` in the published warehouse (empty before the first publish)."""
    published = PublishedWarehouse(mode, data_dir)
    if not published.exists():
        return set()
    with published.open() as reader:
        return {row[0] for row in reader.sql(f'SELECT id FROM "{entity}"').fetchall()}


def records_lost(sim, data_dir: Path, mode: str = "live") -> int:
    """Records of the listed entities the simulator holds that the published warehouse does not."""
    truth = sim.truth(mode)
    return sum(len(truth_ids(truth, e) - held_ids(data_dir, mode, e)) for e in LISTS)
