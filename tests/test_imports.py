"""The layout DESIGN.md fixes: stage packages share code only through the spine (tunebot/), and no
package has an import circle. Read from the source (every import, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data_tools", "sft", "eval", "serve")
PACKAGES = ("tunebot", *STAGES)


def _imports(path: Path) -> set[str]:
    """The project modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name.split(".")[0] in PACKAGES}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"{path.parent.name}.{path.stem}": path for package in PACKAGES
               for path in (ROOT / package).glob("*.py")}
    return {name: {target for target in _imports(path) if target in modules and target != name}
            for name, path in modules.items()}


def test_no_stage_package_imports_another() -> None:
    crossing = sorted(f"{module} -> {target}" for module, targets in _graph().items() for target in targets
                      if module.split(".")[0] in STAGES
                          and target.split(".")[0] not in (module.split(".")[0], "tunebot"))
    assert crossing == []


def test_the_spine_imports_no_stage_but_the_cli_dispatching_to_them() -> None:
    assert sorted(f"{m} -> {t}" for m, ts in _graph().items() for t in ts
                  if m.startswith("tunebot.") and m != "tunebot.cli" and t.split(".")[0] in STAGES) == []


@pytest.mark.parametrize("package", ("tunebot", "data_tools", "sft", "eval", "serve"))
def test_no_import_circles(package: str) -> None:
    graph = {m: {t for t in ts if t.startswith(package + ".")} for m, ts in _graph().items()
             if m.startswith(package + ".")}
    circles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            circles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert circles == []
