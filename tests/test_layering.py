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


#: front-end modules allowed to read a key from the environment themselves, with the
#: reason: none (issue 13 point 6: settings resolution, flag > env > default, lives in the
#: engine, ``engine/settings.py`` and the per-command ``engine/*_settings.py``). Never grow
#: this list; an entry is ``module -> reason``.
ENV_READS_ALLOWED: dict[str, str] = {}

#: ``os`` names that read the environment however they are used
_ENV_READERS = {"getenv", "getenvb", "environb"}


def _env_reads(source: str) -> list[str]:
    """``line: what`` for every place the source reads the process environment itself.

    The rule: ``os.environ`` may appear only as a call argument, as is (``f(flag,
    os.environ)`` or ``f(env=os.environ)``: the mapping is handed to the engine, which reads
    the keys). Anything else with it is a read (``os.environ.get(...)``,
    ``os.environ[...]``, ``"X" in os.environ``, ``env = os.environ`` then ``env.get``),
    as is any use of ``os.getenv``/``os.environb`` and ``from os import environ``.
    ``import os as x`` is followed.
    """
    tree = ast.parse(source)
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    passed: set[int] = set()  # ids of os.environ nodes that are bare call arguments
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                passed.add(id(arg))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in _ENV_READERS | {"environ", "*"}:
                    found.append(f"{node.lineno}: from os import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            if node.attr in _ENV_READERS:
                found.append(f"{node.lineno}: os.{node.attr}")
            elif node.attr == "environ" and id(node) not in passed:
                found.append(f"{node.lineno}: os.environ not passed as an argument")
    return found


def test_env_read_finder() -> None:
    # passing the mapping is fine; reading a key, or escaping the rule by aliasing, is not
    assert _env_reads("import os\nf(a, os.environ)\ng(env=os.environ)\n") == []
    assert _env_reads("import os\nx = os.environ.get('A')\n") == [
        "2: os.environ not passed as an argument"
    ]
    assert _env_reads("import os\nx = os.environ['A']\n") != []
    assert _env_reads("import os\nx = 'A' in os.environ\n") != []
    assert _env_reads("import os\nenv = os.environ\n") != []
    assert _env_reads("import os\nf(os.environ.copy())\n") != []
    assert _env_reads("import os as o\nx = o.getenv('A')\n") == ["2: os.getenv"]
    assert _env_reads("from os import environ\n") == ["1: from os import environ"]
    assert _env_reads("from os import getenv as g\n") == ["1: from os import getenv"]


def test_front_ends_read_no_environment_key() -> None:
    reads = {
        module: found
        for module, path in MODULES.items()
        if module.split(".")[1:2] in (["cli"], ["service"], ["console"])
        and (found := _env_reads(path.read_text(encoding="utf-8")))
    }
    beyond = {m: f for m, f in reads.items() if m not in ENV_READS_ALLOWED}
    assert beyond == {}, "resolve env fallbacks in the engine (ops_manager.engine.settings)"
    stale = sorted(set(ENV_READS_ALLOWED) - set(reads))
    assert stale == [], "these no longer read the environment: shrink ENV_READS_ALLOWED"
