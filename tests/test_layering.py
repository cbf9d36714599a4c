"""The layering rules of ``docs/architecture.md``, checked on the source with ``ast``.

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING:`` (a
function-level import is still a dependency, only a later one). The rules:

- no import circle between ``ops_manager`` modules;
- no private name (``_x``) is imported from another ``ops_manager`` module (a public name
  from a private ``_module`` is fine: packages re-export their private modules);
- ``cli/``, ``service/`` and ``console/`` import no store, reducers, runtime, transports or
  model module (they call the engine).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "ops_manager"

#: import circles allowed to remain: none. (The last one, ``hookspecs -> sinks/transports ->
#: plugins -> hookspecs``, is gone: ``hookspecs`` names the contract types from the modules
#: that define them, ``sinks._contract`` and ``transports._contract``/``_control``, not from
#: the packages whose lookups load the plugin manager.) Never grow this list.
ALLOWED_CYCLES: list[set[str]] = []

#: layers the front ends (cli/service/console) must reach only through the engine
LOWER_LAYERS = ("store", "reducers", "runtime", "transports", "model")

#: front-end modules allowed to import a lower layer directly: none (issue 13 point 6; each
#: front end reads through an engine query or use case). Never grow this list.
FRONT_END_ALLOWED: dict[str, set[str]] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` for every ``ops_manager`` import in the file, at any depth
    (``name`` is ``None`` for ``import x``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            if node.module and node.module.split(".")[0] == "ops_manager":
                for alias in node.names:
                    yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ops_manager":
                    yield alias.name, None


def _graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = set()
        for imported, name in _imports(path):
            sub = f"{imported}.{name}"
            target = sub if name is not None and sub in MODULES else imported
            assert target in MODULES, f"{module} imports unknown {target}"
            if target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_cycle_finder_finds_a_function_level_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [{"a", "b", "c"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    cycles = _cycles(_graph())
    unexpected = [sorted(c) for c in cycles if c not in ALLOWED_CYCLES]
    assert unexpected == [], "import circles (function-level imports count)"
    fixed = [sorted(c) for c in ALLOWED_CYCLES if c not in cycles]
    assert fixed == [], "an allow-listed circle is gone: remove it from ALLOWED_CYCLES"


def test_no_private_name_imported_across_modules() -> None:
    bad = [
        f"{module}: from {imported} import {name}"
        for module, path in MODULES.items()
        for imported, name in _imports(path)
        if name is not None and name.startswith("_") and not name.startswith("__")
    ]
    assert bad == []


def _front_end_reaches() -> dict[str, set[str]]:
    reaches: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in ("cli", "service", "console"):
            continue
        for imported, _name in _imports(path):
            layer = imported.split(".")[1] if "." in imported else ""
            if layer in LOWER_LAYERS:
                reaches.setdefault(module, set()).add(layer)
    return reaches


def test_front_ends_call_the_engine_only() -> None:
    reaches = _front_end_reaches()
    beyond = {
        module: sorted(layers - FRONT_END_ALLOWED.get(module, set()))
        for module, layers in reaches.items()
        if layers - FRONT_END_ALLOWED.get(module, set())
    }
    assert beyond == {}, "cli/service/console must go through ops_manager.engine"
    stale = sorted(
        module
        for module, layers in FRONT_END_ALLOWED.items()
        if not layers <= reaches.get(module, set())
    )
    assert stale == [], "these no longer need their allow-list entry: shrink FRONT_END_ALLOWED"


#: names a reducer must never import: they read the clock (time arrives as an ``int``)
CLOCK_NAMES = {"utc_now_epoch"}


def test_reducers_import_only_the_model() -> None:
    """Issue 13 point 6. The pure helpers they use (JSON and timestamp helpers, ``OpsError``,
    the sink contract's ``AlertEvent``) live in ``model/``; the top-level ``_jsonfmt``,
    ``_timefmt``, ``errors`` and ``sinks`` re-export them for the shell. No allow-list."""
    graph = _graph()
    beyond = {
        module: sorted(
            t for t in targets if not t.startswith(("ops_manager.reducers", "ops_manager.model"))
        )
        for module, targets in graph.items()
        if module.startswith("ops_manager.reducers")
    }
    assert {m: t for m, t in beyond.items() if t} == {}, "reducers import only reducers and model"
    clock = [
        f"{module}: from {imported} import {name}"
        for module, path in MODULES.items()
        if module.startswith("ops_manager.reducers")
        for imported, name in _imports(path)
        if name in CLOCK_NAMES
    ]
    assert clock == [], "reducers never read the clock"


def test_the_model_imports_only_the_model() -> None:
    """The model is the bottom layer: what the reducers import must not lead back up (to the
    shell's clock, the store, the plugin manager)."""
    beyond = {
        module: sorted(t for t in targets if not t.startswith("ops_manager.model"))
        for module, targets in _graph().items()
        if module.startswith("ops_manager.model")
    }
    assert {m: t for m, t in beyond.items() if t} == {}
