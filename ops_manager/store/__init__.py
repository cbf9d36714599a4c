"""Append-only streams, atomic projections, locks and artifact paths.

The names below are re-exported lazily (PEP 562), as ``ops_manager.reducers`` does: a
reader such as ``status`` that needs :class:`LoopPaths` and a projection reader does not
import the commit machinery, the stream classes or ``hashlib`` on its way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops_manager.store._atomic import fsync_dir, replace_bytes, write_atomic
    from ops_manager.store._commit import (
        Append,
        Replace,
        apply_pending,
        commit,
        finish_pending,
        json_replace,
        locked,
        remove_dead_temps,
        rows_append,
        stream_size,
    )
    from ops_manager.store._fleet_paths import FleetPaths
    from ops_manager.store._lock import exclusive_lock, pid_alive
    from ops_manager.store._paths import LoopPaths, resolve_repo, validate_loop_id
    from ops_manager.store._projection import (
        read_file_bytes,
        read_json_and_bytes,
        read_json_file,
        read_json_or_empty,
        remembered_reads,
        write_json,
    )
    from ops_manager.store._stream import (
        Check,
        Intact,
        Position,
        Read,
        Rewritten,
        Rotated,
        Stream,
        Truncated,
        append_line,
        append_lines,
        drop_torn_tail,
        iter_records,
    )
    from ops_manager.store._tail import last_complete_line, tail_lines

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Append": "ops_manager.store._commit",
    "Check": "ops_manager.store._stream",
    "FleetPaths": "ops_manager.store._fleet_paths",
    "Intact": "ops_manager.store._stream",
    "LoopPaths": "ops_manager.store._paths",
    "Position": "ops_manager.store._stream",
    "Read": "ops_manager.store._stream",
    "Replace": "ops_manager.store._commit",
    "Rewritten": "ops_manager.store._stream",
    "Rotated": "ops_manager.store._stream",
    "Stream": "ops_manager.store._stream",
    "Truncated": "ops_manager.store._stream",
    "append_line": "ops_manager.store._stream",
    "append_lines": "ops_manager.store._stream",
    "apply_pending": "ops_manager.store._commit",
    "commit": "ops_manager.store._commit",
    "drop_torn_tail": "ops_manager.store._stream",
    "exclusive_lock": "ops_manager.store._lock",
    "finish_pending": "ops_manager.store._commit",
    "fsync_dir": "ops_manager.store._atomic",
    "iter_records": "ops_manager.store._stream",
    "json_replace": "ops_manager.store._commit",
    "last_complete_line": "ops_manager.store._tail",
    "locked": "ops_manager.store._commit",
    "pid_alive": "ops_manager.store._lock",
    "read_file_bytes": "ops_manager.store._projection",
    "read_json_and_bytes": "ops_manager.store._projection",
    "remembered_reads": "ops_manager.store._projection",
    "replace_bytes": "ops_manager.store._atomic",
    "read_json_file": "ops_manager.store._projection",
    "read_json_or_empty": "ops_manager.store._projection",
    "remove_dead_temps": "ops_manager.store._commit",
    "resolve_repo": "ops_manager.store._paths",
    "rows_append": "ops_manager.store._commit",
    "stream_size": "ops_manager.store._commit",
    "tail_lines": "ops_manager.store._tail",
    "validate_loop_id": "ops_manager.store._paths",
    "write_atomic": "ops_manager.store._atomic",
    "write_json": "ops_manager.store._projection",
}

# a literal list, so type checkers see these names as exported
__all__ = [
    "Append",
    "Check",
    "FleetPaths",
    "Intact",
    "LoopPaths",
    "Position",
    "Read",
    "Replace",
    "Rewritten",
    "Rotated",
    "Stream",
    "Truncated",
    "append_line",
    "append_lines",
    "apply_pending",
    "commit",
    "drop_torn_tail",
    "exclusive_lock",
    "finish_pending",
    "fsync_dir",
    "iter_records",
    "json_replace",
    "last_complete_line",
    "locked",
    "pid_alive",
    "read_file_bytes",
    "read_json_and_bytes",
    "read_json_file",
    "read_json_or_empty",
    "remembered_reads",
    "remove_dead_temps",
    "replace_bytes",
    "resolve_repo",
    "rows_append",
    "stream_size",
    "tail_lines",
    "validate_loop_id",
    "write_atomic",
    "write_json",
]


def __getattr__(name: str) -> Any:
    """Import the defining module on first access of a re-exported name."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
