"""pyarrow without pandas in the console script's process: no command uses pandas, and pyarrow
would load it (~0.3 s of CPU) at a sync's first conversion of Python values to Arrow.

pyarrow converts Python values (`pa.array`, `pa.table`, `Table.from_pylist`: how a sync stages its
rows and keys) only after asking its pandas shim whether the values are pandas objects, and the
shim's first answer imports pandas to know. `forgo` has that first import fail, once: the shim then
holds that pandas is absent, which is the truth for every value of a process that never loaded
pandas. Whatever needs pandas itself still gets it (`Table.to_pandas()`: the shim imports it then,
and from then on answers as usual). Arrow's type inference imports pandas too (an untyped
`pa.array`, a Python value given to a compute function): the warehouse gives types instead.

Should pandas be imported later all the same (a library, a command added later), the shim is asked
again as that import ends (`_ask_again`): else it would go on holding that pandas is absent and
read a pandas object as a plain sequence (`pa.array(pd.Series([1.0, None]))` losing its null).

Only in the console script's process (`install`, called by entry.run), never in a notebook, a
test's process or Dagster's own: one of those may hand pyarrow pandas objects later.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
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
    deferred.when_imported(PANDAS, _then_ask_again(shim))


def _then_ask_again(shim: Any) -> Callable[[Any, types.ModuleType], None]:
    def execute(loader: Any, module: types.ModuleType) -> None:
        loader.exec_module(module)
        _ask_again(shim)

    return execute


def _ask_again(shim: Any) -> None:
    """pandas is loaded now: have the shim import it (a question that must be answered, unlike
    `have_pandas`), so that from here on pandas objects are read as pandas objects."""
    try:
        shim.pd  # noqa: B018
    except ImportError:  # a pandas pyarrow does not support: pyarrow's own answer, as without this module
        pass


def _then_forgo(loader: Any, module: types.ModuleType) -> None:
    loader.exec_module(module)
    forgo(module)


def install() -> None:
    """For this process (the console script's): pyarrow, once imported, holds that pandas is absent."""
    if "pyarrow" in sys.modules:
        forgo(sys.modules["pyarrow"])
    else:
        deferred.when_imported("pyarrow", _then_forgo)
