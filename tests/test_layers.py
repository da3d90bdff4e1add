"""The package's layers: no import cycle, no import of a layer above, no private name across packages.

Built from the source with :mod:`ast`, counting imports inside functions
too; only ``if TYPE_CHECKING:`` blocks are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import recorder as rec

PACKAGE = Path(rec.__file__).resolve().parent

#: Each subpackage's layer; a module may import its own package and lower layers only.
#: Top-level ``errors`` and ``version`` are below everything; ``__init__`` (the re-exports) above.
LAYERS = {
    "errors": 0,
    "version": 0,
    "codec": 1,
    "provenance": 1,
    "store": 2,
    "read": 3,
    "sweep": 4,
    "shards": 5,
    "record": 5,
    "importing": 6,
    "cli": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every recorder module a module imports at run time: (target, imported names, line)."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, list[str], int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "recorder" or alias.name.startswith("recorder."):
                self.found.append((alias.name, [], node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not (target == "recorder" or target.startswith("recorder.")):
            return
        names = [a.name for a in node.names]
        for name in names:  # ``from . import x`` imports the module recorder.….x when there is one
            if _source(f"{target}.{name}") is not None:
                self.found.append((f"{target}.{name}", [], node.lineno))
        self.found.append((target, names, node.lineno))


def _source(module: str) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if module != "recorder" and candidate.is_file():
            return candidate
    return PACKAGE / "__init__.py" if module == "recorder" else None


def _graph() -> dict[str, list[tuple[str, list[str], int]]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[module] = visitor.found
    return graph


def _layer(module: str) -> tuple[str, int | None]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return top, LAYERS.get(top)


GRAPH = _graph()


def test_the_graph_sees_the_package() -> None:
    # a few edges that exist, so that a broken walk cannot pass the tests below by finding nothing
    assert "recorder.store.db" in {t for t, _, _ in GRAPH["recorder.store.folder"]}
    assert "recorder.sweep.loop" in {t for t, _, _ in GRAPH["recorder.record.recorder"]}  # inside a method
    assert len(GRAPH) > 40


def test_every_module_is_in_a_layer() -> None:
    homeless = [m for m in GRAPH if m != "recorder" and _layer(m)[1] is None]
    assert homeless == [], "add these to a subpackage (or to LAYERS, with a reason)"


def test_no_module_imports_a_layer_above_it() -> None:
    upward = []
    for module, imports in GRAPH.items():
        if module == "recorder":  # the re-exports sit above every layer
            continue
        package, layer = _layer(module)
        assert layer is not None, module
        for target, _, line in imports:
            other, other_layer = _layer(target)
            if target == "recorder" or (other != package and (other_layer is None or other_layer >= layer)):
                upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_no_private_name_is_imported_across_packages() -> None:
    private = []
    for module, imports in GRAPH.items():
        package = _layer(module)[0]
        for target, names, line in imports:
            if _layer(target)[0] != package:
                private += [
                    f"{module}:{line} imports {target}.{n}" for n in names if n.startswith("_") and not n.endswith("__")
                ]
    assert private == []


def test_no_import_cycle() -> None:
    edges = {m: sorted({t for t, _, _ in imports if t in GRAPH and t != m}) for m, imports in GRAPH.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("package", sorted(p for p in LAYERS if (PACKAGE / p).is_dir()))
def test_each_layer_says_what_it_owns(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and "import" in doc, f"recorder/{package}/__init__.py must say what it owns and what it may import"


def test_the_documented_layers_are_these() -> None:
    """docs/internals.md's table of layers says what LAYERS says."""
    import re

    table = (PACKAGE.parent / "docs" / "internals.md").read_text()
    documented = {
        name: int(layer)
        for layer, names in re.findall(r"^\| (\d) \| (.+?) \|", table, flags=re.MULTILINE)
        for name in re.findall(r"`(\w+)`", names)
    }
    assert documented == LAYERS
