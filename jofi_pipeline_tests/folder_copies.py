"""Data folders a test starts from, made once per test process and copied into each test that asks.

A test whose subject is a later run (a second sync, a publish over a damaged version) still needs
the first run behind it, and that run costs about a second of CPU (a sync, or a fill and a first
publish: DuckDB's fixed cost per statement). The first test to ask makes the folder; the others
get a copy of it, as a user who moves their data folder has one: the links in it are relative,
copies keep each file's mtime (a published version's manifest records its DuckDB file's), and no
file holds the folder's path. The folders go with the process.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

_made: dict[str, Path] = {}
# Where they go, read once: a test may point tempfile's folder at its own tmp_path, removed as it ends.
_TEMP = tempfile.gettempdir()


def copy_of(name: str, make: Callable[[Path], object], into: Path) -> Path:
    """`into` (which must not exist) as a copy of the folder `make(folder)` fills; `name` says
    which folder, so every caller of one name must make the same one. The first caller makes it
    under its own patches: ask before patching anything `make` runs."""
    if name not in _made:
        folder = Path(tempfile.mkdtemp(prefix=f"jofi-tests-{name}-", dir=_TEMP))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        make(folder / "data")
        _made[name] = folder / "data"
    shutil.copytree(_made[name], into, symlinks=True)
    return into


def named_for(prefix: str, sim) -> str:
    """A copy's name for a folder synced from simulator process `sim`: its pid and port, since a
    warehouse records the API's host and port with the account, so a copy serves only tests that
    sync against that same process (the pool hands it out again, reset to its first day)."""
    from urllib.parse import urlsplit

    return f"{prefix}-{sim.pid}-{urlsplit(sim.base_url).port}"
