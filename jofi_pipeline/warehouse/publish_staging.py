"""The folder of the version a publish is building, and the copy of the current file it starts from.

An incremental publish starts from a copy of the current version's DuckDB file, and that copy must
be on disk before the new version is switched in. Copying is quick; flushing it is not: at 10,000
test takers the file is ~170 MB and its fsync took ~0.26 s of a ~0.9 s quiet publish. So the copy
and its fsync run in a background thread, started before the publish gate and the table
fingerprints, whose CPU work (DuckDB, outside the GIL) they then overlap. Nothing is visible to
readers until the publish switches `current`; a refused or failed publish discards the folder.

The same thread then removes the versions older than the current one (`tidy`): they would be
removed after the switch anyway, and unlinking a large file took ~0.14 s there. A reader still
holding one of their files open keeps reading it (POSIX).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path

from jofi_pipeline.warehouse.paths import DB_NAME, ModePaths

VERSION_PREFIX = "published."

log = logging.getLogger(__name__)


class StagedVersion:
    """A new, empty version folder, with the current version's DuckDB file being copied into it.

    Owned by one publish: `copied()` waits for the copy (raising what it raised), `discard()`
    removes the folder once the copy has stopped.
    """

    def __init__(self, targets: ModePaths, source: Path | None, tidy: Callable[[Path], None] | None = None) -> None:
        token = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        self.version_dir = targets.mode_dir / f"{VERSION_PREFIX}{token}"
        self.db_file = self.version_dir / DB_NAME
        self.version_dir.mkdir()
        self._copy: Future[None] | None = None
        if source is not None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jofi-publish-copy")
            self._copy = pool.submit(copy_and_flush, source, self.db_file, tidy)
            pool.shutdown(wait=False)  # the thread ends with the copy

    def copied(self) -> None:
        """Block until the copy is on disk; raises what the copy raised."""
        if self._copy is not None:
            self._copy.result()

    def discard(self) -> None:
        """Remove the folder (after the copy has stopped writing into it)."""
        if self._copy is not None:
            self._copy.exception()  # waits; an error of the copy is moot once the version is dropped
        shutil.rmtree(self.version_dir, ignore_errors=True)


def copy_and_flush(source: Path, target: Path, tidy: Callable[[Path], None] | None = None) -> None:
    """Copy a file and fsync it, so the switch never points at a file still only in the page
    cache; then `tidy(the new version's folder)`, the clean-up that can overlap the publish too."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if tidy is not None:
        try:
            tidy(target.parent)
        except Exception as exc:  # a clean-up; what it leaves is removed after the switch
            log.warning("could not remove older published versions yet: %s", exc)
