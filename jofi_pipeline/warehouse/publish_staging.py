"""The folder of the version a publish is building, and the copy of the current file it starts from.

An incremental publish starts from a copy of the current version's DuckDB file, and that copy must
be on disk before the new version is switched in. Copying is quick; flushing it is not: at 10,000
test takers the file is ~170 MB and its fsync took ~0.26 s of a ~0.9 s quiet publish. So the copy
and its fsync run in a background thread. A sync starts it when its run opens
(`RunWriter.stage_publish`): the writer lock keeps the current version current until the run
publishes, so the copy overlaps the fetching and is long on disk when the publish's table
fingerprints and gate need both cores. Nothing is visible to readers until the publish switches
`current`; a refused or failed publish, or a run that ends without publishing, discards the folder.

The publish then removes the versions older than the current one in another background thread
(`tidy`): they would be removed after the switch anyway, and unlinking a large file took ~0.14 s
there. A reader still holding one of their files open keeps reading it (POSIX). Only a publish
tidies, so a run that fails before its publish leaves every version folder it found.

Both are waited for whatever interrupts the wait (`Beside`): a second Ctrl-C while the discard
waited for the copy used to skip the folder's removal, leaving a whole extra version behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from jofi_pipeline.warehouse.beside import Beside
from jofi_pipeline.warehouse.paths import DB_NAME, ModePaths

VERSION_PREFIX = "published."

log = logging.getLogger(__name__)


class StagedVersion:
    """A new, empty version folder, with `source` (the current version's DuckDB file, if any)
    being copied into it.

    Owned by one publish (or by the run that staged it until it publishes): `copied()` waits for
    the copy (raising what it raised) and for the clean-up; `discard()` removes the folder once the
    copy has stopped.
    """

    def __init__(self, targets: ModePaths, source: Path | None) -> None:
        token = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        self.source = source
        self.version_dir = targets.mode_dir / f"{VERSION_PREFIX}{token}"
        self.db_file = self.version_dir / DB_NAME
        self.version_dir.mkdir()
        self._copy = Beside(partial(copy_and_flush, source, self.db_file), "jofi-publish-copy") if source else None
        self._tidy: Beside[None] | None = None
        self._writers: list[Callable[[], object]] = []  # more work writing into the folder (publish_ahead.py)

    def tidy(self, clean_up: Callable[[], None]) -> None:
        """Run `clean_up` in the background; `copied()` waits for it. A failure is only logged."""
        self._tidy = Beside(partial(_logged, clean_up), "jofi-publish-tidy")

    def before_discard(self, stop: Callable[[], object]) -> None:
        """`stop()` (it returns once it no longer writes into the folder) is called before the folder goes."""
        self._writers.append(stop)

    def copied(self) -> None:
        """Block until the copy is on disk and the clean-up done; raises what the copy raised."""
        if self._tidy is not None:
            self._tidy.result()
        if self._copy is not None:
            self._copy.result()

    def discard(self) -> None:
        """Remove the folder (after the copy, the clean-up and any other writer have stopped writing)."""
        try:
            for stop in self._writers:
                stop()
        finally:
            try:
                for work in (self._copy, self._tidy):
                    if work is not None:  # waits (an interruption too, raised once it ended); an error of
                        with contextlib.suppress(Exception):  # the copy is moot once the version is dropped
                            work.result()
            finally:
                shutil.rmtree(self.version_dir, ignore_errors=True)


def copy_and_flush(source: Path, target: Path) -> None:
    """Copy a file and fsync it, so the switch never points at a file still only in the page cache."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _logged(clean_up: Callable[[], None]) -> None:
    try:
        clean_up()
    except Exception as exc:  # a clean-up; what it leaves is removed after the switch
        log.warning("could not remove older published versions yet: %s", exc)
