"""Which records the published warehouse holds, against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

from jofi_pipeline.entities import LISTS
from jofi_pipeline.warehouse import PublishedWarehouse


def truth_ids(truth: dict, entity: str) -> set:
    return {record["id"] for record in truth[entity]}


def held_ids(data_dir: Path, mode: str, entity: str) -> set:
    """Typed ids of `entity` in the published warehouse (empty before the first publish)."""
    return held_ids_of(data_dir, mode, (entity,))[entity]


def held_ids_of(data_dir: Path, mode: str, entities) -> dict[str, set]:
    """Per entity, its typed ids in the published warehouse, read through one connection (each
    open of the published file costs ~20 ms of CPU; a crash trial asks for every listed entity)."""
    published = PublishedWarehouse(mode, data_dir)
    if not published.exists():
        return {entity: set() for entity in entities}
    with published.open() as reader:
        return {entity: {row[0] for row in reader.sql(f'SELECT id FROM "{entity}"').fetchall()} for entity in entities}


def records_lost(sim, data_dir: Path, mode: str = "live") -> int:
    """Records of the listed entities the simulator holds that the published warehouse does not."""
    truth = sim.truth(mode)
    held = held_ids_of(data_dir, mode, LISTS)
    return sum(len(truth_ids(truth, e) - held[e]) for e in LISTS)
