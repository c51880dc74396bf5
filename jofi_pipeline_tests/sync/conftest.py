"""Fixtures of the sync's unit tests: an in-memory JOFI and a warehouse in a temp dir."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jofi_pipeline.sync import SyncOptions, SyncReport, run_sync
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseStore
from jofi_pipeline_tests.folder_copies import copy_of
from jofi_pipeline_tests.sync.fake_jofi import FakeJofi


@pytest.fixture
def fake() -> FakeJofi:
    """Three test takers (two completed, one with a profile), one open invitation; lists capped at 5."""
    return default_world()


def default_world() -> FakeJofi:
    world = FakeJofi()
    world.add_test_taker(101, completed=True, profile="CNP101")
    world.add_test_taker(102, completed=True)
    world.add_test_taker(103, completed=False)
    world.add_invitation(7, accepted_at=None)
    return world


@pytest.fixture
def store(tmp_path: Path) -> WarehouseStore:
    return WarehouseStore(tmp_path, "live")


@pytest.fixture
def synced(tmp_path: Path) -> WarehouseStore:
    """A store after one sync of `fake`'s world: a copy of the folder this process synced first
    (folder_copies.py), for the tests whose subject is the next run."""
    folder = copy_of("synced-default-world", lambda data: run(default_world(), WarehouseStore(data, "live")),
                     tmp_path / "synced")
    return WarehouseStore(folder, "live")


def run(fake: FakeJofi, store: WarehouseStore, **options) -> SyncReport:
    async def go() -> SyncReport:
        async with fake.client() as client:
            return await run_sync(client, store, SyncOptions(**options))

    return asyncio.run(go())


def held(store: WarehouseStore, table: str, column: str = "id") -> set:
    with PublishedWarehouse(store.mode, store.data_dir).open() as reader:
        return {row[0] for row in reader.sql(f"SELECT {column} FROM {table}").fetchall()}
