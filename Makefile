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
# a production instance, a synced template) is built once; conftest.py's scheduler hands the files
# that run for minutes out first and the tests of one of them one by one. (loadgroup marks are not honoured with
# pytest 9.2 and pytest-xdist 3.8: the group suffix is never added to the test id.)
TEST_WORKERS ?= 4

# The tests' interpreters keep their bytecode in __pycache__/ (git-ignored), pytest's
# assertion-rewritten test modules included: with PYTHONDONTWRITEBYTECODE set, as on some machines,
# every worker rewrote and compiled ~200 modules again (seconds of CPU each), and every CLI
# process and simulator compiled the project's own modules.
TEST_ENV := PYTHONDONTWRITEBYTECODE=
# The tests' temporary files (each test's warehouse, Dagster instances, simulators' worlds) go to
# memory when /dev/shm has room for them (4 GB free; a container's default 64 MB has not): a
# publish flushes every file it writes, and on a disk each fsync waits for it, the tests' wall
# time twice their CPU on a busy machine. pyproject.toml's tmp_path_retention_policy = "failed"
# removes a passing test's folder as it ends, so only failures' folders stay there.
TEST_TMPDIR := $(shell df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 && $$4 >= 4194304 { print "/dev/shm" }')
TEST_ENV += $(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR))

test: install
	$(TEST_ENV) $(UV) run pytest -n $(TEST_WORKERS) --dist loadfile

# The inner loop: unit and contract tests only (no simulator, server, CLI process or Dagster run),
# on two workers: their DuckDB work is CPU, and the two cores share it. JOFI_TEST_TIER=fast: the
# property tests whose examples each build a warehouse or an app run half their examples
# (jofi_pipeline_tests/examples.py); `make test` runs them all.
test-fast: install
	$(TEST_ENV) JOFI_TEST_TIER=fast $(UV) run pytest -m "not e2e" -n 2

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
