"""The package's layers (docs/architecture.md): every `setu` import, at the top of a module or
inside a function, goes down the list cli → tools → ops / ingest → warehouse, and no module
reaches itself again through its imports."""

from __future__ import annotations

import ast
from pathlib import Path

from setu.warehouse.paths import PROJECT_DIR

SOURCE = PROJECT_DIR / "src"
# Higher layers may import lower ones; ops and ingest are side by side and import neither.
LAYER = {"__main__": 5, "cli": 4, "tools": 3, "ops": 2, "ingest": 2, "warehouse": 1}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the setu modules it imports (a name imported from a package counts as its
    module when it is one)."""
    modules = {module_name(path): path for path in (SOURCE / "setu").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("setu"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("setu")}
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_imports_only_go_down() -> None:
    graph = imports()
    assert len(graph) > 30, "the package was not found"
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(module) != layer(target) and LAYER[layer(target)] >= LAYER[layer(module)]
    )
    assert not upward, "imports against the layers:\n  " + "\n  ".join(upward)


def test_no_import_cycle() -> None:
    graph = imports()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)
