"""Imports only point down the layers (README.md's layer list, docs/design.md), and the
modules of one layer import each other without a cycle."""

import ast
import functools
import itertools
import pathlib
from collections import deque
from collections.abc import Iterator

import pytest

LAYERS = ["field", "sharing", "net", "ledger", "storage", "mpc", "prep", "lang", "app"]
SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "enigma"


def _imported_layers(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative import inside a layer package: ".." reaches a sibling layer
                if node.level >= 2 and node.module:
                    names = ["enigma." + node.module]
                else:
                    continue
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "enigma" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_point_down(layer: str) -> None:
    rank = LAYERS.index(layer)
    for path in (SRC / layer).rglob("*.py"):
        for other in _imported_layers(path):
            assert LAYERS.index(other) <= rank, (
                f"{path.relative_to(SRC)} (layer {layer}) imports enigma.{other}, "
                "a higher layer"
            )


def test_modules_beside_the_layers_import_none() -> None:
    """`enigma/*.py` (shared helpers such as atomic files) sit below every layer."""
    for path in SRC.glob("*.py"):
        assert not _imported_layers(path), f"{path.relative_to(SRC)} imports a layer"


# -- import cycles ---------------------------------------------------------------------------
# A cycle is a knot even when Python resolves it (an import inside a function runs late, but
# the two modules still cannot be read, tested or moved apart), so imports inside functions
# count. Imports under `if TYPE_CHECKING:` never run: they are how a type-only dependency
# points the other way, and do not count.


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for the package at `root` (its folder name first)."""
    out = {}
    for path in root.rglob("*.py"):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_time_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, anywhere (functions too), except in the body of
    an `if TYPE_CHECKING:` (its `else` runs, so it counts)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _type_checking(child.test):
            for stmt in child.orelse:
                yield from _run_time_imports(ast.Module(body=[stmt], type_ignores=[]))
        else:
            yield from _run_time_imports(child)


def _targets(module: str, is_package: bool, stmt: ast.Import | ast.ImportFrom,
             known: dict[str, pathlib.Path]) -> set[str]:
    """The known modules an import statement loads: `from p import x` is module p.x when
    that is a module, else p; a dotted name not known resolves to its nearest known parent."""
    if isinstance(stmt, ast.Import):
        bases, names = [a.name for a in stmt.names], []
    else:
        base = stmt.module or ""
        if stmt.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - (stmt.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        bases, names = [base], [a.name for a in stmt.names]
    found = set()
    for base in bases:
        submodules = {f"{base}.{n}" for n in names} & known.keys()
        found |= submodules
        if names and len(submodules) == len(names):
            continue  # `from p import m1, m2` of modules only: p's names are not used
        parts = base.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts:
            found.add(".".join(parts))
    found.discard(module)
    return found


def import_graph(root: pathlib.Path) -> dict[str, dict[str, int]]:
    """module -> {module it imports at run time: line of the first such import}."""
    known = _modules(root)
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(), filename=str(path))
        for stmt in _run_time_imports(tree):
            for target in _targets(module, path.name == "__init__.py", stmt, known):
                edges.setdefault(target, stmt.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan 1972), each
    sorted; modules in a component all reach each other through their imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def shortest_loop(graph: dict[str, dict[str, int]], start: str) -> list[str]:
    """The shortest chain of imports from `start` back to itself (breadth first)."""
    came: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph.get(v, {})):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came[path[-1]])
                return [*reversed(path), start]
            if w not in came:
                came[w] = v
                queue.append(w)
    return []


def _describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    loop = shortest_loop(graph, component[0])
    steps = ", ".join(f"{a} imports {b} (line {graph[a][b]})"
                      for a, b in itertools.pairwise(loop))
    return f"{', '.join(component)} import each other in a cycle; for example {steps}"


@functools.cache
def _enigma_graph() -> dict[str, dict[str, int]]:
    return import_graph(SRC)


@pytest.mark.parametrize("layer", LAYERS)
def test_the_modules_of_a_layer_import_each_other_without_a_cycle(layer: str) -> None:
    graph = _enigma_graph()
    prefix = f"enigma.{layer}"
    inside = {m: {t: line for t, line in edges.items()
                  if t == prefix or t.startswith(prefix + ".")}
              for m, edges in graph.items() if m == prefix or m.startswith(prefix + ".")}
    found = cycles(inside)
    assert not found, "\n".join(_describe(inside, c) for c in found)


def test_the_cycle_check_counts_late_imports_and_skips_type_only_ones(tmp_path) -> None:
    """A made-up package: a imports b inside a function, b imports a with `from . import`,
    c imports a only for type checking, d imports c through `from pkg import c`."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (pkg / "b.py").write_text("from . import a\n\ndef g():\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nimport pkg.d\n"
                              "if TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "d.py").write_text("from pkg import c\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b": 2} and graph["pkg.b"] == {"pkg.a": 1}
    assert graph["pkg.c"] == {"pkg.d": 2} and graph["pkg.d"] == {"pkg.c": 1}
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]
    assert shortest_loop(graph, "pkg.a") == ["pkg.a", "pkg.b", "pkg.a"]
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from pkg import c\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]
