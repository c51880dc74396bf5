"""`python -m jofi_pipeline_tests.deploy.sync_process MODE`: one sync of MODE (the sync itself,
without Dagster's start-up cost) configured from the JOFI_* variables, as a process to kill -9."""

from __future__ import annotations

import asyncio
import sys

from jofi_pipeline import settings
from jofi_pipeline.api import JofiClient
from jofi_pipeline.sync import run_sync
from jofi_pipeline.warehouse import WarehouseStore
from jofi_pipeline.warehouse.remote import RemotePublisher


def main(mode: str) -> None:
    mode = settings.parse_mode(mode)
    store = WarehouseStore(settings.data_dir(), mode, remote=RemotePublisher.from_env())

    async def run():
        async with JofiClient.from_env(mode) as client:
            return await run_sync(client, store, progress=lambda line: print(line, flush=True))

    report = asyncio.run(run())
    print(report.remote.describe() if report.remote else "no upload", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
