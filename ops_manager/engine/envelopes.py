"""The runtime's contract envelopes on demand (``loop.md`` §3.1, §3.2): what
``loop-run-snapshot`` and ``poll-events`` print, so those commands call the engine and never
the runtime readers themselves (``docs/architecture.md``, layering)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops_manager.runtime import build_snapshot, poll_events
from ops_manager.store import LoopPaths


def loop_run_snapshot(
    paths: LoopPaths, *, now: int, trace_id: str | None, run_id: str | None
) -> dict[str, Any]:
    """The ``loop_run_snapshot`` envelope of one loop (§3.1; fail-closed on a missing loop
    directory or event log). ``trace_id``/``run_id`` of ``None`` or ``""`` mean "not given"."""
    return build_snapshot(paths, now=now, trace_id=trace_id, run_id=run_id)


def poll_loop_events(
    paths: LoopPaths,
    *,
    cursor_file: Path | None,
    from_start: bool,
    max_events: int,
    trace_id: str | None,
    now: int,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Emit a ``loop_run_event`` envelope for each event after the cursor, then save the
    cursor (§3.2). ``emit`` gets each envelope as soon as it is built, so an error at a line
    leaves the envelopes before it emitted and the cursor unsaved."""
    poll_events(
        paths,
        cursor_file=cursor_file,
        from_start=from_start,
        max_events=max_events,
        trace_id=trace_id,
        now=now,
        emit=emit,
    )
