"""Shared by the SIGKILL sweeps (``test_crash_sweep``, ``test_fleet_crash_sweep``).

A sweep runs a command under ``strace -f -e inject=<call>:signal=KILL:when=K`` for every K
the uninterrupted command reaches (each ``fsync``, then each ``rename``), lets normal passes
follow, and compares what is on disk with the histories a kill may legitimately leave. The CLI
runs on the real clock, so the comparison normalises what depends on when a pass ran
(timestamps, durations, ages, digests of rows that hold a time); counts, offsets, folds,
reason codes and every row are compared as they are.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

STRACE = shutil.which("strace")
COMMIT_CALLS = ("fsync", "rename")
_TIMEISH = re.compile(r"(?i)(at|timestamp|seconds|since|age|lag|epoch|time)$")
ISO_IN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_HASHED = re.compile(r"(?i)(sha256|idempotencykey|fingerprint)$")

#: runs the command under test with these strace arguments (``None``: without strace)
Runner = Callable[[list[str] | None], int]


def strace_prefix(args: list[str]) -> list[str]:
    """The strace command line that runs a command with ``args`` (follows its threads)."""
    assert STRACE is not None
    return [STRACE, "-f", "-qq", *args]


def syscalls(call: str) -> str:
    """The syscalls one commit call kind covers."""
    return "fsync" if call == "fsync" else "rename,renameat,renameat2"


def kill_at(call: str, k: int) -> list[str]:
    """strace arguments that SIGKILL the command at its ``k``-th ``call``."""
    names = syscalls(call)
    return ["-o", "/dev/null", "-e", f"trace={names}", "-e", f"inject={names}:signal=KILL:when={k}"]


def count_commit_calls(run: Runner, log: Path) -> dict[str, int]:
    """Run the uninterrupted command under strace and count its commit calls by kind."""
    assert run(["-e", "trace=fsync,rename,renameat,renameat2", "-o", str(log)]) in (0, 1)
    counts = dict.fromkeys(COMMIT_CALLS, 0)
    for line in log.read_text().splitlines():
        name = line.split("(", 1)[0].split()[-1] if "(" in line else ""
        if "resumed" not in line and name:
            counts["fsync" if name == "fsync" else "rename"] += 1
    return counts


def norm(value: Any, key: str = "") -> Any:
    """``value`` with what depends on the clock replaced by ``<time>`` / ``<hash>``."""
    if _TIMEISH.search(key) and not isinstance(value, bool):
        return "<time>"  # a time, a duration, or a table of them (durationSeconds.max)
    if isinstance(value, dict):
        if str(value.get("metric", "")).endswith("Seconds"):
            value = {**value, "observed": "<time>"}  # a health reason's observed lag
        return {k: norm(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if _HASHED.search(key):
        return "<hash>"  # a digest of a row that holds a time
    if key == "repoName":
        return "R"
    if isinstance(value, str):
        return ISO_IN.sub("<time>", value)  # a time, or a key made from one (dedupKey)
    return value


def nearest(got: dict[str, Any], histories: dict[str, dict[str, Any]]) -> str:
    """The legitimate history ``got`` is closest to, and the leaves where they differ."""
    diffs = {name: leaves(got, history) for name, history in histories.items()}
    name = min(diffs, key=lambda n: len(diffs[n]))
    return f"closest to {name!r}, differs at {diffs[name][:6]}"


def leaves(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, leaf by leaf."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in leaves(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in leaves(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:1500]]
