"""A sync's writes never load pandas in the console script's process (jofi_pipeline/without_pandas.py):
pyarrow's pandas shim is told pandas is absent, and every conversion the warehouse makes is typed
(Arrow's type inference would import pandas). Whoever needs pandas still gets it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The console script (entry.run), running as its command the writes of four upserts: new keys, the
# same keys changed again in the same run, changed in a later run, a new key in a run whose id was
# used before. Each takes its own way to the history tables.
WRITES = """
import json, sys, types
from pathlib import Path
from jofi_pipeline import entry

def writes():
    import pyarrow as pa
    import jofi_pipeline_tests.warehouse.docs_shapes as docs
    from jofi_pipeline.warehouse import WarehouseStore
    from jofi_pipeline_tests.warehouse.conftest import T0, T1, T2

    def changed(n):
        cnp = f"CNP{n:010d}"
        return docs.test_taker_list_item(career_navigation_profile_id=cnp, career_navigation_url=f"https://www.careernavigation.org?c={cnp}")

    store = WarehouseStore(Path(sys.argv[1]), "live")
    with store.open_run("run-1", T0) as run:
        first = run.upsert("test_takers", [docs.test_taker()], T0)["test_takers_history"]
        again = run.upsert("test_takers", [changed(1)], T1)["test_takers_history"]
    with store.open_run("run-2", T2) as run:
        later = run.upsert("test_takers", [changed(2)], T2)["test_takers_history"]
    with store.open_run("run-2", T2) as run:  # the run id again (a retried run): every key goes the long way
        retried = run.upsert("test_takers", [docs.test_taker_list_item(id=2)], T2)["test_takers_history"]
    loaded_by_the_writes = "pandas" in sys.modules
    import pandas as pd  # loaded later all the same (a library, a later command): its objects are pandas objects again
    series_nulls = pa.array(pd.Series([1.0, None])).null_count
    wanted = pa.table({"a": [1]}).to_pandas()
    print(json.dumps({"versions": [[c.inserted, c.updated] for c in (first, again, later, retried)],
                      "pandas_loaded_by_the_writes": loaded_by_the_writes, "series_nulls": series_nulls,
                      "to_pandas": type(wanted).__name__}))

cli = types.ModuleType("jofi_pipeline.cli")  # the command the console script runs: the writes above
cli.main = writes
sys.modules[cli.__name__] = cli
entry.run()
"""


@pytest.mark.e2e  # a fresh interpreter: what it loads is what is tested
def test_the_console_scripts_writes_load_no_pandas_yet_pandas_loaded_later_still_works(tmp_path):
    done = subprocess.run([sys.executable, "-c", WRITES, str(tmp_path / "data")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["versions"] == [[1, 0], [0, 1], [1, 1], [1, 0]]  # opened; rewritten in its own run; closed and opened; opened
    assert seen["pandas_loaded_by_the_writes"] is False
    assert seen["series_nulls"] == 1  # not read as a plain list, whose NaN is a value
    assert seen["to_pandas"] == "DataFrame"
