"""docs/architecture.md stays true: every module named, no Router imports below, no cycles."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "failover"
PAGE = ROOT / "docs" / "architecture.md"

# Layers below the call loop: none of them may import the Router, the loop or the streams.
LOWER = ("policy", "breaker", "providers", "cache", "conversation", "instrumentation")
ABOVE = {"failover._router", "failover._route_call", "failover._streaming"}


def modules() -> dict[str, Path]:
    """Every module under src/failover by dotted name (a package by its __init__)."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _target(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> Iterator[str]:
    """The failover modules an import statement names, resolved to dotted names."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.split(".")[0] == "failover")
        return
    if node.level == 0:
        if node.module and node.module.split(".")[0] == "failover":
            yield node.module
        return
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    if node.module:
        yield ".".join([*base, node.module])
    else:  # from . import x: x is a module of the package
        yield from (".".join([*base, a.name]) for a in node.names)


def all_imports(module: str, path: Path) -> set[str]:
    """Every failover import in the module, wherever it is (functions, TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_target(module, path, node))
    return found


def load_time_imports(module: str, path: Path) -> set[str]:
    """The failover imports run when the module is imported: module level, outside
    functions and ``if TYPE_CHECKING:`` blocks (inside try/if blocks too)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(_target(module, path, node))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def unit(module: str) -> str:
    """The node of the package graph: a subpackage, or a top-level module on its own."""
    parts = module.split(".")
    if len(parts) == 1:
        return "failover"
    return parts[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def table_rows() -> dict[str, set[str]]:
    """The page's module table: package (``failover/`` for the top level) -> names in it."""
    rows = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([a-z_]+/)`[^|]*\|(.*)\|\s*$", line)
        if match:
            rows[match[1]] = set(re.findall(r"`([\w.]+)`", match[2]))
    return rows


def test_every_package_and_module_is_named_on_the_page() -> None:
    """A module added, moved or removed shows up here until the page says where it lives."""
    rows = table_rows()
    expected: dict[str, set[str]] = {}
    for path in [*SRC.rglob("*.py"), *SRC.rglob("*.lua")]:
        rel = path.relative_to(SRC)
        package = "failover/" if len(rel.parts) == 1 else f"{rel.parts[0]}/"
        expected.setdefault(package, set()).add(rel.name)
    missing = {
        package: sorted(names - rows.get(package, set()))
        for package, names in expected.items()
        if names - rows.get(package, set())
    }
    stale = {
        package: sorted(n for n in names if n.endswith((".py", ".lua")))
        for package, names in ((p, rows[p] - expected.get(p, set())) for p in rows)
        if any(n.endswith((".py", ".lua")) for n in names)
    }
    assert missing == {}, "modules the page does not name"
    assert stale == {}, "modules the page names that no longer exist"


def test_the_page_is_in_the_docs_nav() -> None:
    """mkdocs builds the page into the site's navigation."""
    assert "architecture.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_the_router(layer: str) -> None:
    """policy/, breaker/, providers/, cache/, conversation/, instrumentation/ know no Router,
    no call loop and no stream, not even for type checking or inside a function."""
    offending = {
        name: sorted(all_imports(name, path) & ABOVE)
        for name, path in modules().items()
        if name.startswith(f"failover.{layer}") and all_imports(name, path) & ABOVE
    }
    assert offending == {}


def test_no_import_cycles_between_packages() -> None:
    """Packages (and top-level modules) import each other as a DAG when loaded."""
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        for target in load_time_imports(name, path):
            if unit(name) != unit(target):
                graph.setdefault(unit(name), set()).add(unit(target))
    assert cycles(graph) == []


def test_no_import_cycles_between_modules() -> None:
    """No two modules import each other (directly or around a loop) when loaded."""
    graph = {name: load_time_imports(name, path) for name, path in modules().items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    """The checks above would see a cycle if there were one."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
