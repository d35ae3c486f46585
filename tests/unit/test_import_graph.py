"""The modules under src/signalpost import each other in one direction only.

Every ``import`` statement counts, wherever it stands: at module level, inside a function (a lazy
import to dodge a cycle is still a cycle) or under ``if TYPE_CHECKING:``. Nodes are modules: a
package's ``__init__`` is the package's own node, reached only when something imports the package
itself or a name defined in it (``from signalpost.carriers import get_carrier``); importing a
submodule does not count as importing its parent package's ``__init__``.

Two modules load feature modules by name (`importlib`), which no import statement shows: the app
loads each feature's `api` and `jobs` (`signalpost.app.FEATURES`), the command line each feature's
`cli` (`signalpost.cli.FEATURE_COMMANDS`). Those loads count as imports too.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PACKAGE = "signalpost"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((SRC / ROOT_PACKAGE).rglob("*.py"))}


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _imported(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file that names a module of ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = node.module
            if node.level:
                target = _resolve_relative(module, is_package, node.level, node.module)
            if target is None or target not in known:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                # `from package import submodule` depends on the submodule, not the __init__.
                yield (submodule if submodule in known else target), node.lineno


def _named_tuple(path: Path, name: str) -> tuple[str, ...]:
    """The strings of a module-level tuple `name = ("a", "b", ...)` in the file."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and [t.id for t in node.targets if isinstance(t, ast.Name)] == [name]
            and isinstance(node.value, ast.Tuple)
        ):
            return tuple(str(ast.literal_eval(e)) for e in node.value.elts)
    raise AssertionError(f"{path} has no tuple {name}")


def _loaded_by_name(modules: dict[str, Path]) -> dict[str, list[str]]:
    """The feature modules `app` and `cli` load with importlib (module docstring)."""
    app, cli = f"{ROOT_PACKAGE}.app", f"{ROOT_PACKAGE}.cli"
    features = _named_tuple(modules[app], "FEATURES")
    commands = _named_tuple(modules[cli], "FEATURE_COMMANDS")
    return {
        app: [f"{ROOT_PACKAGE}.{f}.{role}" for f in features for role in ("api", "jobs")],
        cli: [f"{ROOT_PACKAGE}.{f}.cli" for f in commands],
    }


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module -> line of the first import}, for our own modules only
    (line 0: loaded by name)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in _imported(module, path, known):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    for module, targets in _loaded_by_name(modules).items():
        for target in targets:
            if target in known:
                graph[module].setdefault(target, 0)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    return [_one_cycle(graph, set(component)) for component in tangles(graph)]


def tangles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module: each module in one reaches
    every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _one_cycle(graph: dict[str, dict[str, int]], component: set[str]) -> list[str]:
    """A shortest loop through the component's first module (breadth-first), closed on itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in component and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no loop found in {sorted(component)}")  # pragma: no cover


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(cycle)]
    return "\n       ".join(steps)


def test_no_import_cycles_under_src() -> None:
    graph = import_graph()
    report = "\n".join(
        f"modules importing each other: {', '.join(component)}\n"
        f"  e.g. {_describe(graph, _one_cycle(graph, set(component)))}"
        for component in tangles(graph)
    )
    assert not report, f"import cycle(s) under src/:\n{report}"


def test_the_walker_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    assert len(graph) > 50
    # A known import of each kind, so the walker cannot silently see nothing.
    assert "signalpost.kit.errors" in graph["signalpost.app"]
    assert "signalpost.messages.api" in graph["signalpost.app"]  # loaded by name
    assert "signalpost.numbers.cli" in graph["signalpost.cli"]  # loaded by name
    assert "signalpost.app" in graph["signalpost.runner"]  # inside a function
    assert find_cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_carriers_import_only_kit_settings_and_themselves() -> None:
    allowed = ("signalpost.kit", "signalpost.settings", "signalpost.carriers", "signalpost.models")
    wrong = {
        f"{module} -> {target}"
        for module, edges in import_graph().items()
        if module.startswith("signalpost.carriers")
        for target in edges
        if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed)
    }
    assert not wrong, "carriers/ must stay below the feature packages:\n" + "\n".join(sorted(wrong))
