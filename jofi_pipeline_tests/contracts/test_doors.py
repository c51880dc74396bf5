"""The one-way doors between the rooms (ARCHITECTURE.md), read from the imports of every module.

Every `import` is counted, at module level or inside a function: a lazy import still couples.
`door_violations` is the rule; the tests below show it holds for the package and that it catches a
forbidden import, in a crafted edge list and in a synthetic module tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import jofi_pipeline

PACKAGE = "jofi_pipeline"
TESTS = "jofi_pipeline_tests"
PACKAGE_DIR = Path(jofi_pipeline.__file__).parent
FRONT = {"cli", "runs", "analyst", "demo"}
LEAVES = {"settings", "entities"}

Edge = tuple[str, str]  # (importing module, imported module), both dotted names of ours


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str, packages: tuple[str, ...] = (PACKAGE,)) -> set[str]:
    """Modules of `packages` that `path` imports (absolute and relative, anywhere in the file)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from jofi_pipeline import entities` imports the submodule `jofi_pipeline.entities`.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if any(name == p or name.startswith(p + ".") for p in packages)}


def edges_under(root: Path) -> list[Edge]:
    """(importer, imported) for every module under `root` (the directory holding `jofi_pipeline/`)."""
    edges: list[Edge] = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        module = module_name(path, root)
        edges.extend((module, target) for target in sorted(imports_of(path, module)))
    return edges


def room(module: str) -> str:
    """`jofi_pipeline.api.client` -> 'api'; `jofi_pipeline.cli` -> 'cli'; the package itself -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def door_violations(edges: Iterable[Edge], known_modules: set[str] | None = None) -> list[str]:
    """Every edge that breaks a door, as 'importer -> imported: why'."""
    problems = []
    for importer, imported in edges:
        source, target = room(importer), room(imported)
        if known_modules is not None and imported not in known_modules:
            continue  # `from jofi_pipeline.x import name`: `jofi_pipeline.x.name` is not a module
        if source == target or target == "":
            continue
        why = None
        if source == "simulator":
            why = "the simulator imports nothing else of ours (it must be able to disagree with our client)"
        elif source in LEAVES:
            why = "settings and the entity registry are leaves: they import nothing of ours"
        elif {source, target} == {"api", "warehouse"}:
            why = "the client and the warehouse never import each other"
        elif target == "defs" and source not in FRONT | {"definitions"}:
            why = "only the front (cli, runs, analyst, demo) and definitions.py import defs"
        elif source == "warehouse" and target == "sync":
            why = "the warehouse never imports the sync"
        if why:
            problems.append(f"{importer} -> {imported}: {why}")
    return problems


def _all_modules(root: Path) -> set[str]:
    return {module_name(p, root) for p in (root / PACKAGE).rglob("*.py")}


def test_the_package_keeps_its_doors():
    root = PACKAGE_DIR.parent
    edges = edges_under(root)
    assert len(edges) > 100, "the scan found too few imports to mean anything"
    assert door_violations(edges, _all_modules(root)) == []


def test_nothing_but_the_tests_imports_the_tests():
    """bench/ and the package share helpers through jofi_pipeline/harness, never through the tests."""
    root = PACKAGE_DIR.parent
    files = [*(root / "bench").glob("*.py"), *(root / PACKAGE).rglob("*.py")]
    assert len(files) > 50
    offenders = {
        str(path.relative_to(root)): sorted(names)
        for path in files
        if (names := imports_of(path, module_name(path, root), packages=(TESTS,)))
    }
    assert offenders == {}


def test_the_scan_sees_lazy_and_relative_imports():
    root = PACKAGE_DIR.parent
    edges = set(edges_under(root))
    assert ("jofi_pipeline.cli", "jofi_pipeline.runs") in edges  # imported inside a command function
    assert ("jofi_pipeline.api", "jofi_pipeline.api.client") in edges


def test_each_rule_catches_a_crafted_forbidden_edge():
    forbidden = {
        ("jofi_pipeline.simulator.world", "jofi_pipeline.settings"): "simulator",
        ("jofi_pipeline.entities", "jofi_pipeline.settings"): "leaves",
        ("jofi_pipeline.settings", "jofi_pipeline.api.redact"): "leaves",
        ("jofi_pipeline.api.client", "jofi_pipeline.warehouse.store"): "never import each other",
        ("jofi_pipeline.warehouse.store", "jofi_pipeline.api.redact"): "never import each other",
        ("jofi_pipeline.sync.runner", "jofi_pipeline.defs.assets"): "only the front",
        ("jofi_pipeline.webhooks.app", "jofi_pipeline.defs"): "only the front",
        ("jofi_pipeline.warehouse.published", "jofi_pipeline.sync.queries"): "never imports the sync",
    }
    for edge, why in forbidden.items():
        (problem,) = door_violations([edge])
        assert why in problem and edge[0] in problem
    allowed = [
        ("jofi_pipeline.cli", "jofi_pipeline.defs"), ("jofi_pipeline.definitions", "jofi_pipeline.defs"),
        ("jofi_pipeline.sync.runner", "jofi_pipeline.api.client"), ("jofi_pipeline.warehouse.tables", "jofi_pipeline.entities"),
        ("jofi_pipeline.defs.assets", "jofi_pipeline.sync"), ("jofi_pipeline.simulator.api", "jofi_pipeline.simulator.world"),
    ]
    assert door_violations(allowed) == []


def test_a_forbidden_import_in_a_module_file_fails_the_scan(tmp_path):
    package = tmp_path / PACKAGE
    for room_dir in ("simulator", "warehouse", "api"):
        (package / room_dir).mkdir(parents=True)
        (package / room_dir / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text("import os\n")
    (package / "api" / "client.py").write_text("from jofi_pipeline import settings\n")
    (package / "warehouse" / "store.py").write_text("def later():\n    from ..api import client\n")
    (package / "simulator" / "world.py").write_text("import jofi_pipeline.settings\n")
    (package / "warehouse" / "tools.py").write_text("import jofi_pipeline_tests.helpers\n")
    problems = door_violations(edges_under(tmp_path), _all_modules(tmp_path))
    assert problems == [
        "jofi_pipeline.simulator.world -> jofi_pipeline.settings: the simulator imports nothing else of ours "
        "(it must be able to disagree with our client)",
        "jofi_pipeline.warehouse.store -> jofi_pipeline.api: the client and the warehouse never import each other",
        "jofi_pipeline.warehouse.store -> jofi_pipeline.api.client: the client and the warehouse never import each other",
    ]
    tools = package / "warehouse" / "tools.py"
    assert imports_of(tools, "jofi_pipeline.warehouse.tools", packages=(TESTS,)) == {"jofi_pipeline_tests.helpers"}
