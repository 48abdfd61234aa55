"""The layering of docs/architecture.md, checked on the source: imports run one way (no cycle),
and no module uses another module's private (`_name`) names.

Both read the code with `ast`, without importing it. An import counts wherever it stands: at
module level, inside a function (a lazy import is still a dependency) and under
``if TYPE_CHECKING:``. ``from package import name`` counts as an import of the submodule
`package.name` where one exists, else of the package itself; importing a submodule does not
count as importing its parent packages (Python runs their ``__init__`` first, but that is not
a choice of the importing module).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "deepfake_detect"

#: Test files named for something else than the module whose internals they test.
OWN_TESTS = {"test_face_detectors": "faces", "test_plugins": "registry"}


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _source(module: str | None, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from ... import`` reads from (`module`: the importing one)."""
    if not node.level or module is None:  # outside the package: as written
        return "." * node.level + (node.module or "")
    base = module.split(".")
    base = base[:len(base) - node.level + (1 if _is_package(module) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.AST) -> set[str]:
    """The package's modules that `module` imports, anywhere in its code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _source(module, node)
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != module)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, ast.parse(path.read_text())) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, within the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(component)


def test_imports_have_no_cycle():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "modules importing each other, round a cycle:\n" + "\n".join(
        f"{', '.join(c)} (for example {' -> '.join(_cycle_in(graph, set(c)))})" for c in cycles)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}, "e": set(), "f": {"g"}, "g": {"f"}}
    assert _cycles(graph) == [["a", "b", "c"], ["f", "g"]]
    assert _cycle_in(graph, {"a", "b", "c"}) == ["a", "b", "a"]


# --- private names ------------------------------------------------------------------------
def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, methods, module and class
    variables, and attributes it assigns (``self._x = ...``, ``obj._x = ...``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):  # self.__dict__["_x"] = ...
            names.add(node.slice.value)
    return {n for n in names if _private(n)}


DEFINED = {name: _defined(ast.parse(path.read_text())) for name, path in MODULES.items()}


def _owned(module: str) -> set[str]:
    """The private names of `module`, and of the modules of its package if it is one."""
    return set().union(*(names for name, names in DEFINED.items() if name == module or name.startswith(module + ".")))


def _uses(path: Path, own: set[str], module: str | None) -> list[str]:
    """Where the file at `path` (the package's `module`, or None for a file outside the
    package) uses a private name that `own` does not hold.

    A use is ``from m import _name`` (within the package, a private module such as `_backend`
    may be imported: it is private to the package, not to a module), an import of a private
    module from outside the package, or an attribute ``x._name`` on anything but ``self``,
    ``cls`` and ``super()`` where `_name` is defined in the package (other libraries'
    private names are not this test's business).
    """
    everywhere = set().union(*DEFINED.values())
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            source = _source(module, node)
            if module is None and any(_private(part) for part in source.split(".")):
                found.append(f"{where}:{node.lineno}: imports from the private module {source}")
            for alias in node.names:
                is_module = f"{source}.{alias.name}" in MODULES
                if _private(alias.name) and alias.name not in own and not (module is not None and is_module):
                    found.append(f"{where}:{node.lineno}: imports {source}.{alias.name}")
        elif isinstance(node, ast.Import) and module is None:
            found += [f"{where}:{node.lineno}: imports the private module {alias.name}" for alias in node.names
                      if alias.name.startswith(PACKAGE) and any(_private(p) for p in alias.name.split("."))]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in everywhere \
                and node.attr not in own:
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
                continue
            found.append(f"{where}:{node.lineno}: uses {ast.unparse(node)}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = []
    for name, path in MODULES.items():
        found += _uses(path, DEFINED[name], name)
    for folder in ("tests", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tested = OWN_TESTS.get(path.stem, path.stem.removeprefix("test_")) if folder == "tests" else None
            module = f"{PACKAGE}.{tested}" if tested else None
            own = _defined(ast.parse(path.read_text())) | (_owned(module) if module in MODULES else set())
            found += _uses(path, own, None)
    assert not found, "private names used from another module:\n" + "\n".join(found)


# --- names in docstrings ---------------------------------------------------------------------
DOTTED = re.compile(rf"\b{PACKAGE}(?:\.[A-Za-z_]\w*)+")


def _top_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level (definitions, assignments, imports)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def test_docstrings_name_modules_and_names_that_exist():
    missing = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for dotted in DOTTED.findall(ast.get_docstring(node) or ""):
                parts = dotted.split(".")
                k = max(i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
                rest = parts[k:]
                module = ".".join(parts[:k])
                if rest and rest[0] not in _top_names(ast.parse(MODULES[module].read_text())) \
                        and ".".join(parts[:k + 1]) not in MODULES:
                    missing.append(f"{path.relative_to(ROOT)}: {dotted}")
    assert not missing, "docstrings name what does not exist:\n" + "\n".join(missing)
