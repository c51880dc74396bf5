"""Shared steps of the end-to-end tests: run a sync against a simulator, read what it published."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import duckdb

from jofi_pipeline import entities
from jofi_pipeline.api import ClientConfig, JofiClient
from jofi_pipeline.harness.truth import truth_ids
from jofi_pipeline.sync import SyncOptions, SyncReport, run_sync
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.remote import RemotePublisher

# The entities the API lists (the registry's): what the simulator's truth and a sync both hold.
LISTED = entities.LISTS


__all__ = ["LISTED", "ids", "published", "sync", "tree_digest", "truth_ids"]

CLIENT_FIELDS = frozenset(ClientConfig.__dataclass_fields__)


def sync(sim, mode: str, data_dir: Path, **options) -> SyncReport:
    """One sync of `mode` from `sim` (key from the mode's env var, as the Dagster resource reads it).

    Keyword options are SyncOptions fields, ClientConfig fields (e.g. max_concurrency), or the
    store's `publish_url` / `publish_keep` (as the Dagster resource builds them).
    """
    config = ClientConfig(**{k: options.pop(k) for k in list(options) if k in CLIENT_FIELDS})
    remote = RemotePublisher.from_settings(options.pop("publish_url", ""), options.pop("publish_keep", None))
    store = WarehouseStore(data_dir, mode, remote=remote)

    async def run() -> SyncReport:
        async with JofiClient.from_env(mode, base_url=sim.base_url, config=config) as client:
            return await run_sync(client, store, SyncOptions(**options))

    return asyncio.run(run())


def published(data_dir: Path, mode: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True)


def ids(con: duckdb.DuckDBPyConnection, table: str) -> set:
    return {row[0] for row in con.execute(f"SELECT id FROM {table}").fetchall()}


def tree_digest(root: Path) -> dict[str, str]:
    """Every published file under root (symlinks followed and recorded) with its sha256."""
    digest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts[:1] == ("work",):
            continue
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                digest[f"{rel_dir / name} ->"] = os.readlink(Path(dirpath) / name)
        for name in filenames:
            path = Path(dirpath) / name
            digest[str(rel_dir / name)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest
