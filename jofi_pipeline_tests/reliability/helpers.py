"""What the reliability tests check besides the shared observation (jofi_pipeline/harness)."""

from __future__ import annotations

import os
from pathlib import Path

from jofi_pipeline.harness.published_state import observe

__all__ = ["data_dir_files", "observe"]


def data_dir_files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]
