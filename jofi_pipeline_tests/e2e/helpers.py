"""Shared steps of the end-to-end tests: run a sync against a simulator, read what it published."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import duckdb

from jofi_pipeline.settings import KEY_ENV_VAR
from jofi_pipeline.sync import SyncOptions, SyncReport, run_sync

ENTITY_TABLES = ("users", "teams", "email_templates", "assessments", "score_profiles",
                 "invitations", "test_takers", "career_navigation_profiles")


def sync(sim, mode: str, data_dir: Path, **options) -> SyncReport:
    return asyncio.run(
        run_sync(
            SyncOptions(mode=mode, base_url=sim.base_url, data_dir=data_dir, api_key_env_var=KEY_ENV_VAR[mode], **options)
        )
    )


def published(data_dir: Path, mode: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_dir / mode / "jofi.duckdb"), read_only=True)


def ids(con: duckdb.DuckDBPyConnection, table: str) -> set:
    return {row[0] for row in con.execute(f"SELECT id FROM {table}").fetchall()}


def truth_ids(truth: dict, entity: str) -> set:
    return {record["id"] for record in truth[entity]}


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
