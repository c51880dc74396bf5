"""The code location's default executor: in process, as `jofi_sync` has its own.

A run of the asset graph's implicit job (Materialize on the asset graph, an asset backfill) took
Dagster's default, the multiprocess executor: the run's process started yet another interpreter
for its one step (the multi-asset with its checks), importing Dagster and the project again,
~4 CPU-s and seconds of wall per run. The step does the same in the run's own process.
"""

import dagster as dg


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
