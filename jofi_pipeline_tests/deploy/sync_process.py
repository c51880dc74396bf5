"""`python -m jofi_pipeline_tests.deploy.sync_process MODE`: one sync of MODE (the sync itself,
without Dagster's start-up cost) configured from the JOFI_* variables, as a process to kill -9."""

from __future__ import annotations

import asyncio
import sys

from jofi_pipeline import settings
from jofi_pipeline.sync import SyncOptions, run_sync


def main(mode: str) -> None:
    options = SyncOptions(
        mode=settings.parse_mode(mode), base_url=settings.base_url(), data_dir=settings.data_dir(),
        api_key_env_var=settings.KEY_ENV_VAR[mode], publish_url=settings.publish_url(),
    )
    report = asyncio.run(run_sync(options, progress=lambda line: print(line, flush=True)))
    print(report.remote.describe() if report.remote else "no upload", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
