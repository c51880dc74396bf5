"""pyarrow without pandas in the console script's process: no command uses pandas, and pyarrow
would load it (~0.3 s of CPU) at a sync's first conversion of Python values to Arrow.

pyarrow converts Python values (`pa.array`, `pa.table`, `Table.from_pylist`: how a sync stages its
rows and keys) only after asking its pandas shim whether the values are pandas objects, and the
shim's first answer imports pandas to know. `forgo` has that first import fail, once: the shim then
holds that pandas is absent, which is the truth for every value of a process that never loaded
pandas. Whatever needs pandas itself still gets it (`Table.to_pandas()`: the shim imports it then,
and from then on answers as usual). Arrow's type inference imports pandas too (an untyped
`pa.array`, a Python value given to a compute function): the warehouse gives types instead.

Only in the console script's process (`install`, called by entry.run), never in a notebook, a
test's process or Dagster's own: one of those may hand pyarrow pandas objects later.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

from jofi_pipeline import deferred

PANDAS = "pandas"


class _Absent:
    """A finder that has pandas' import fail, in the thread that installed it only."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == PANDAS and threading.get_ident() == self._thread:
            raise ModuleNotFoundError(f"No module named {PANDAS!r} (not loaded in this process)", name=PANDAS)


def forgo(pyarrow: types.ModuleType) -> None:
    """Have pyarrow's pandas shim answer its first question, "is pandas installed?", with no.
    Nothing to do once pandas is loaded (the shim is right to use it) or the shim has answered."""
    shim = getattr(getattr(pyarrow, "lib", None), "_pandas_api", None)  # pyarrow's own: without it, nothing to do
    if shim is None or PANDAS in sys.modules:
        return
    absent = _Absent()
    sys.meta_path.insert(0, absent)
    try:
        shim.have_pandas  # noqa: B018  the question, asked once: the shim remembers the answer
    finally:
        sys.meta_path.remove(absent)


def _then_forgo(loader: Any, module: types.ModuleType) -> None:
    loader.exec_module(module)
    forgo(module)


def install() -> None:
    """For this process (the console script's): pyarrow, once imported, holds that pandas is absent."""
    if "pyarrow" in sys.modules:
        forgo(sys.modules["pyarrow"])
    else:
        deferred.when_imported("pyarrow", _then_forgo)
