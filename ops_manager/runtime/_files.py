"""Reading the Superloop runtime's own files (``loop.md`` §1.1) into plain JSON values.

The runtime writes ``state.json``, ``active-run.json``, ``approval.json`` and
``run-summary.json`` non-atomically, so a reader can catch one half-written: that is an
``invalid JSON in <path>`` error for this snapshot, and the next one sees the finished file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ops_manager.errors import OpsError
from ops_manager.runtime._events import loads_json
from ops_manager.store import LoopPaths, last_complete_line


def check_runtime_layout(paths: LoopPaths) -> None:
    """Fail closed unless the loop directory and its ``events.jsonl`` exist (§3.1 steps 1-2)."""
    if not paths.loop_dir.is_dir():
        raise OpsError(f"required artifact root missing: {paths.loop_dir}")
    if not paths.events_file.is_file():
        raise OpsError(f"required artifact missing: {paths.events_file}")


def read_optional_json(path: Path) -> Any:
    """Parse an optional runtime file: ``None`` unless it is a regular file.

    Like upstream's ``[ -f ]`` test, a directory (or other non-file) at the path counts as
    absent. A file that is not valid JSON raises ``invalid JSON in <path>``.
    """
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None  # removed between the check and the read (e.g. active-run.json at exit)
    except OSError as exc:
        raise OpsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return loads_json(data)
    except ValueError:
        raise OpsError(f"invalid JSON in {path}") from None


@attrs.frozen
class RuntimeFiles:
    """The optional runtime files, each the parsed JSON value or ``None`` when absent."""

    superloop_state: Any
    active_run: Any
    approval: Any
    run_summary: Any
    heartbeat: Any


def read_runtime_files(paths: LoopPaths) -> RuntimeFiles:
    """Read every optional runtime file; the first invalid one (upstream's order) raises."""
    state = read_optional_json(paths.runtime_state_file)
    active_run = read_optional_json(paths.active_run_file)
    approval = read_optional_json(paths.approval_file)
    run_summary = read_optional_json(paths.run_summary_file)
    heartbeat = read_optional_json(paths.heartbeat_file)
    return RuntimeFiles(
        superloop_state=state,
        active_run=active_run,
        approval=approval,
        run_summary=run_summary,
        heartbeat=heartbeat,
    )


def latest_summary_entry(run_summary: Any) -> dict[str, Any] | None:
    """``run_summary.entries[-1]`` when that is an object, else ``None``."""
    if not isinstance(run_summary, dict):
        return None
    entries = run_summary.get("entries")
    if isinstance(entries, list) and entries and isinstance(entries[-1], dict):
        return entries[-1]
    return None


def last_event(paths: LoopPaths) -> dict[str, Any] | None:
    """The last complete, non-blank line of ``events.jsonl``, parsed; ``None`` if none.

    Read from the end of the file, so the cost does not grow with the log. Unlike upstream's
    ``tail -n 1`` an unterminated final line (a write in progress) and trailing blank lines
    are skipped (DECISIONS Q-3/Q-4). A line that is not a JSON object raises
    ``invalid JSON in final events line: <events path>``.
    """
    line = last_complete_line(paths.events_file)
    if line is None:
        return None
    try:
        value = loads_json(line)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise OpsError(f"invalid JSON in final events line: {paths.events_file}")
    return value
