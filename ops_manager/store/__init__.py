"""Append-only streams, atomic projections, locks and artifact paths."""

from ops_manager.store._atomic import fsync_dir, write_atomic
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
    iter_records,
    last_complete_line,
)

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
    "resolve_repo",
    "rows_append",
    "stream_size",
    "validate_loop_id",
    "write_atomic",
    "write_json",
]
