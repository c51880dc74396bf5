"""What a command that makes no request loads: no HTTP client (jofi_pipeline/api/__init__.py names
its client's modules on first use), and for `--help` or a usage error, no DuckDB either."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "aiohttp", "duckdb", "pyarrow", "pandas")

# The CLI's module (all that `--help` and a usage error load), then what `status`, `sql` and
# `describe` load on top (analyst.py): which of HEAVY each has loaded.
LOADED = f"""
import json, sys
loaded = lambda: [m for m in {HEAVY!r} if m in sys.modules]
import jofi_pipeline.cli
cli = loaded()
import jofi_pipeline.analyst
print(json.dumps({{"cli": cli, "analyst": loaded()}}))
"""


@pytest.mark.e2e  # a process of its own: nothing imported before the CLI
def test_the_cli_and_its_read_commands_load_no_http_client():
    done = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded["cli"] == []
    assert "httpx" not in loaded["analyst"] and "aiohttp" not in loaded["analyst"], loaded["analyst"]


NAMES = """
import json, sys
import jofi_pipeline.api as api
names = dir(api)
print(json.dumps({"names": names, "all": api.__all__, "httpx": "httpx" in sys.modules}))
"""


@pytest.mark.e2e  # a process of its own: no name of the package asked for yet
def test_the_api_package_lists_its_names_before_any_is_asked_for():
    done = subprocess.run([sys.executable, "-c", NAMES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert set(seen["all"]) <= set(seen["names"]), sorted(set(seen["all"]) - set(seen["names"]))
    assert "JofiClient" in seen["names"] and seen["httpx"] is False  # listed, not loaded
