"""Every stream read goes through ``store.Stream`` (issue 13 point 3), checked with ``ast``.

Outside ``ops_manager/store/`` no function may open a file for reading (``open``/``io.open``
in a read mode, ``<path>.open(...)`` in a read mode, ``os.open`` without ``O_WRONLY``), and
no whole-file read (``read_bytes``/``read_text``) may name a stream: a ``.jsonl`` literal,
or a name the store's path modules give a ``.jsonl`` file (``events_file``,
``escalations_file``, ...), as an attribute or a local. Whole-file reads of JSON documents
(projections, configs, cursors) are fine: they are not streams.

The few functions that must open a file themselves are allow-listed below, each with why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "ops_manager"

#: (module, function) -> why it opens a file itself. Shrink this list; never grow it
#: without a reason a reviewer would accept.
ALLOWED: dict[tuple[str, str], str] = {
    ("ops_manager.runtime._events", "_open_events"): (
        "the EventReader hot loop's opener: its line loop is tuned on its own (the cold "
        "reconcile's cost); the scans beside it run the store's primitives on this handle"
    ),
    ("ops_manager._entry_points", "entry_points"): "package metadata (entry_points.txt)",
    ("ops_manager._entry_points", "dist_name_version"): "package metadata (METADATA)",
    ("ops_manager.engine.project_state", "last_event_envelope"): (
        "a finished NDJSON input named by --events-file, whose unterminated last line is a "
        "line like any other: not a live stream, so not the store's torn-tail rules"
    ),
    ("ops_manager.cli.supervise", "_lock"): "the supervisor's pid lock file",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stream_names() -> set[str]:
    """Names of the store's path accessors whose file is a ``.jsonl`` stream."""
    names = set()
    for source in ("_paths.py", "_fleet_paths.py"):
        tree = ast.parse((ROOT / "store" / source).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(c, ast.Constant)
                and isinstance(c.value, str)
                and c.value.endswith(".jsonl")
                for stmt in node.body
                if not isinstance(stmt, ast.Expr)  # not the docstring
                for c in ast.walk(stmt)
            ):
                names.add(node.name)
    return names


STREAM_NAMES = _stream_names()


def _mode(call: ast.Call, position: int) -> str | None:
    """The mode argument of an ``open`` call (``"r"`` when absent; ``None``: not a literal)."""
    node: ast.expr | None = call.args[position] if len(call.args) > position else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    if node is None:
        return "r"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _reads(mode: str | None) -> bool:
    return mode is None or "r" in mode or "+" in mode


def _names_a_stream(node: ast.expr) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and ".jsonl" in sub.value:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in STREAM_NAMES:
            return True
        if isinstance(sub, ast.Name) and (sub.id in STREAM_NAMES or "jsonl" in sub.id):
            return True
    return False


def file_reads(tree: ast.AST) -> Iterator[tuple[str, int, str]]:
    """``(enclosing function, line, what)`` for each file read the rules forbid."""

    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, int, str]]:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                else function
            )
            if isinstance(child, ast.Call):
                what = _forbidden(child)
                if what is not None:
                    yield function, child.lineno, what
            yield from visit(child, inner)

    yield from visit(tree, "<module>")


def _forbidden(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open":
        return "open()" if _reads(_mode(call, 1)) else None
    if not isinstance(func, ast.Attribute):
        return None
    receiver = ast.unparse(func.value)
    if func.attr == "open" and receiver == "io":
        return "io.open()" if _reads(_mode(call, 1)) else None
    if func.attr == "open" and receiver == "os":
        flags = {n.attr for n in ast.walk(call.args[1]) if isinstance(n, ast.Attribute)}
        return "os.open()" if "O_WRONLY" not in flags else None
    if func.attr == "open":
        return f"{receiver}.open()" if _reads(_mode(call, 0)) else None
    if func.attr in ("read_bytes", "read_text") and _names_a_stream(func.value):
        return f"{receiver}.{func.attr}()"
    return None


def _violations() -> tuple[list[str], set[tuple[str, str]]]:
    found, used = [], set()
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        if module.startswith("ops_manager.store"):
            continue
        for function, line, what in file_reads(ast.parse(path.read_text(encoding="utf-8"))):
            if (module, function) in ALLOWED:
                used.add((module, function))
            else:
                found.append(f"{module}.{function} (line {line}): {what}")
    return found, used


def test_the_detector_finds_every_kind_of_read() -> None:
    source = """
def a(p, events_file, paths):
    open(p)
    open(p, "rb")
    open(p, mode="r+b")
    p.open()
    p.open("rb")
    io.open(p, "rb")
    os.open(p, os.O_RDWR | os.O_CREAT)
    events_file.read_bytes()
    paths.escalations_file.read_text()
    (paths.ops_dir / "x.jsonl").read_bytes()
def b(p, state_file):
    open(p, "a")
    p.open("w")
    os.open(p, os.O_WRONLY)
    state_file.read_bytes()
    p.read_text()
"""
    found = list(file_reads(ast.parse(source)))
    assert [f for f, _, _ in found] == ["a"] * 10
    assert {"events_file", "escalations_file", "intents_file"} <= STREAM_NAMES


def test_no_stream_is_read_outside_the_store() -> None:
    found, used = _violations()
    assert found == [], "read streams with ops_manager.store.Stream (or allow-list, with why)"
    stale = sorted(f"{m}.{f}" for m, f in ALLOWED if (m, f) not in used)
    assert stale == [], "an allow-listed function no longer opens a file: remove it"
