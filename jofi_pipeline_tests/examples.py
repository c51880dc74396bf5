"""How many examples a costly property test runs: its full count in `make test`, half of it in
`make test-fast` (the Makefile sets JOFI_TEST_TIER=fast there), never fewer than 10. Only the
properties whose examples each build a warehouse, an inbox or an app use it; `make test` runs
every property at its full count."""

from __future__ import annotations

import os

FAST = os.environ.get("JOFI_TEST_TIER") == "fast"


def examples(full: int) -> int:
    return max(10, full // 2) if FAST else full
