# Two-command quickstart: `make demo` and `make test`. Both install what they need themselves.
# uv comes from PATH, or is bootstrapped once into .uv/ with pip (Python 3.11+ is all we assume).

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
export DAGSTER_DISABLE_TELEMETRY := 1
export UV_FROZEN := 1

.PHONY: demo test test-fast install bench lock clean

demo: install
	$(UV) run jofi-pipeline demo

# Everything: unit, contract and end-to-end tests (README's and CI's command).
# Several workers: most tests wait on a simulator, a CLI or a Dagster process, not on the CPU.
# --dist loadfile keeps a module's tests on one worker, so a module-scoped fixture (a `dagster dev`,
# a production instance, a synced template) is built once. (loadgroup marks are not honoured with
# pytest 9.2 and pytest-xdist 3.8: the group suffix is never added to the test id.)
TEST_WORKERS ?= 4

test: install
	$(UV) run pytest -n $(TEST_WORKERS) --dist loadfile

# The inner loop: unit and contract tests only (no simulator, server, CLI process or Dagster run),
# on two workers: their DuckDB work is CPU, and the two cores share it.
test-fast: install
	$(UV) run pytest -m "not e2e" -n 2

install: .venv/.installed

# --compile-bytecode: every interpreter start then reads .pyc files instead of compiling the
# sources again (with PYTHONDONTWRITEBYTECODE set, as on some machines, it never stops doing so):
# `import dagster` costs half the CPU, which every CLI command, test and Dagster process pays.
.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv

bench: install
	$(UV) run python bench/simulator_load.py
	$(UV) run python bench/client_fanout.py
	$(UV) run python bench/sync.py
	$(UV) run python bench/coverage.py
	$(UV) run python bench/targets.py

lock:
	$(UV) lock

clean:
	rm -rf .venv .uv .pytest_cache data/live data/test
