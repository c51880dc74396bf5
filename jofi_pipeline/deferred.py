"""Two parts of Dagster that opening the instance imports and a CLI sync does not use: loaded on use.

Opening the project's instance imports Dagster's storage modules, and with them
  - alembic (with mako, ~90 modules): `dagster._core.storage.sql` imports five of its names at its
    top, for creating, stamping and migrating databases. The project's storage opens a database
    that is already stamped without them (dagster_storage.py), so a sync into an existing instance
    never calls them;
  - the daemon package's `__init__` (the controller, every daemon, structlog): the run storage
    needs only `dagster._daemon.types` (the heartbeat record), and importing that module runs the
    package's `__init__` first, which imports the rest.
Together ~0.2-0.3 s of CPU per CLI sync (docs/notes/issue-13.md, "Follow-up 5").

In the console script's process only (`install`, called by entry.run; never in a test's own process
or Dagster's commands), the storage module is executed with stand-in alembic modules whose every
name imports alembic at its first use (a call or an attribute) and from then on passes everything
to the real one; and the daemon package's `__init__` runs the first time something asks
the package for a name it does not hold yet. What runs is unchanged: a new instance's databases
are still created and stamped by Dagster through alembic (tested), and the daemon package has
every name when asked.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

SQL_MODULE = "dagster._core.storage.sql"
# What SQL_MODULE imports from alembic at its top, by module (Dagster 1.13): the keys are the
# modules stood in for; the names are what a test checks against Dagster's source (any name a
# stand-in is asked for is deferred, listed or not).
ALEMBIC_NAMES = {
    "alembic.command": ("downgrade", "stamp", "upgrade"),
    "alembic.config": ("Config",),
    "alembic.runtime.environment": ("EnvironmentContext",),
    "alembic.runtime.migration": ("MigrationContext",),
    "alembic.script": ("ScriptDirectory",),
}
DAEMON_PACKAGE = "dagster._daemon"


class Deferred:
    """`module.name`, imported at its first use; then every call and attribute goes to the real one."""

    __slots__ = ("_module", "_name", "_real")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name
        self._real: Any = None

    def resolve(self) -> Any:
        if self._real is None:
            self._real = getattr(importlib.import_module(self._module), self._name)
        return self._real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.resolve(), attribute)

    def __repr__(self) -> str:
        state = "imported" if self._real is not None else "not imported yet"
        return f"<{self._module}.{self._name}, {state}>"


def stand_in_module(name: str) -> types.ModuleType:
    """A module whose every public name is `Deferred(name, attribute)`: the names listed in
    ALEMBIC_NAMES are the ones Dagster 1.13 imports, and one a later Dagster adds is deferred too
    (rather than failing the import: a stand-in module has no names of its own)."""
    stand_in = types.ModuleType(name, "stand-in while Dagster's SQL storage module is imported")

    def deferred(attribute: str) -> Deferred:
        if attribute.startswith("_"):  # the import system's own probes (__path__, __spec__, ...)
            raise AttributeError(attribute)
        return Deferred(name, attribute)

    stand_in.__getattr__ = deferred  # type: ignore[attr-defined]  (PEP 562)
    return stand_in


def with_alembic_stand_ins(loader: Any, module: types.ModuleType) -> None:
    """Execute SQL_MODULE with `Deferred` stand-ins for its alembic names (unless alembic is already
    imported: then there is nothing to spare). The stand-in modules exist only while it executes."""
    if any(name == "alembic" or name.startswith("alembic.") for name in sys.modules):
        loader.exec_module(module)
        return
    stand_ins = {name: stand_in_module(name) for name in ALEMBIC_NAMES}
    sys.modules.update(stand_ins)
    try:
        loader.exec_module(module)
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


def init_on_first_use(loader: Any, package: types.ModuleType) -> None:
    """Leave the package's `__init__` until something asks the package for a name it does not hold
    (its submodules import as usual meanwhile: the package's path is set before this runs).

    Other threads asking meanwhile wait for that `__init__` to finish; if it fails, the error is
    raised to the one who asked and the next ask runs it again."""
    lock = threading.RLock()
    state = {"ran": False, "running": False}

    def first_use(name: str) -> Any:
        with lock:
            if not state["ran"] and not state["running"]:
                state["running"] = True
                try:
                    loader.exec_module(package)
                finally:
                    state["running"] = False
                state["ran"] = True
                if package.__dict__.get("__getattr__") is first_use:
                    del package.__getattr__  # type: ignore[attr-defined]  (from now on, as any module)
        try:
            return package.__dict__[name]  # during the package's own __init__: only what it has made so far
        except KeyError:
            raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}") from None

    package.__getattr__ = first_use  # type: ignore[attr-defined]


class _Loader:
    """The module's own loader, with `exec_module` done by `execute(loader, module)`."""

    def __init__(self, loader: Any, execute: Callable[[Any, types.ModuleType], None]) -> None:
        self._loader = loader
        self._execute = execute

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._execute(self._loader, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, is_package, ...: the loader's own
        return getattr(self._loader, name)


class _Finder:
    """Finds the modules it is given as Python would, and gives each its way of executing, once."""

    def __init__(self, pending: dict[str, Callable[[Any, types.ModuleType], None]]) -> None:
        self.pending = pending

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        execute = self.pending.pop(name, None)
        if execute is None:
            return None
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, execute)
        return spec


def install() -> None:
    """For this process (the console script's): the two modules, when first imported, as above."""
    pending = {SQL_MODULE: with_alembic_stand_ins, DAEMON_PACKAGE: init_on_first_use}
    for name in list(pending):
        if name in sys.modules:  # already imported here: nothing left to spare
            del pending[name]
    if pending:
        sys.meta_path.insert(0, _Finder(pending))


def when_imported(name: str, execute: Callable[[Any, types.ModuleType], None]) -> None:
    """Module `name`, when first imported, executed by `execute(loader, module)` (see _Loader)."""
    sys.meta_path.insert(0, _Finder({name: execute}))
