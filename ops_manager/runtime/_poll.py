"""``poll-events`` as a library call: resume after a cursor, emit envelopes, commit the cursor.

The cursor file keeps the upstream keys (``loop.md`` §3.2 step 6) plus one trailing key of
ours, ``position`` (a fingerprinted :class:`StreamPosition`), so the next poll seeks straight
to the first new byte instead of re-scanning the log. A cursor without ``position`` (written by
the upstream tool, or edited by hand) still works: the position is recomputed from
``eventLineOffset`` with one newline scan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import alt, as_nonneg_int
from ops_manager._timefmt import format_ts
from ops_manager.errors import OpsError
from ops_manager.runtime._envelopes import SCHEMA_VERSION, build_event_envelope
from ops_manager.runtime._events import (
    EventReader,
    StreamPosition,
    count_newlines,
    loads_json,
    position_for_line_offset,
    verify_position,
)
from ops_manager.runtime._files import check_runtime_layout
from ops_manager.store import LoopPaths, write_json


@attrs.frozen
class PollResult:
    """What one poll did."""

    #: where reading started (from the cursor, or the start of the log)
    start: StreamPosition
    #: after the last emitted event (== ``start`` when nothing was emitted)
    position: StreamPosition
    #: newline count of ``events.jsonl`` when the batch was read
    total_lines: int
    events_emitted: int
    #: bytes of an unterminated final line left for a later poll (0 if none)
    torn_tail_bytes: int
    cursor_file: Path
    #: the cursor object that was written
    cursor: dict[str, Any]


def _exceeds(start: int, total: int) -> OpsError:
    return OpsError(
        f"cursor offset ({start}) exceeds available events ({total}); "
        "reset cursor or use --from-start"
    )


def read_cursor_start(paths: LoopPaths, cursor_file: Path) -> StreamPosition:
    """The verified position to resume from, according to ``cursor_file``.

    A missing cursor file means the start of the log. Errors (exact contract text):
    ``invalid JSON in cursor file: <path>``, ``invalid cursor offset in <path>`` (the
    offset is not a non-negative integer), ``cursor offset (<n>) exceeds available events
    (<total>); reset cursor or use --from-start``. A stored ``position`` whose fingerprint no
    longer matches the log raises ``events log was rewritten or truncated since the cursor
    was written (<reason> at line <n>); reset cursor or use --from-start``.
    """
    if not cursor_file.is_file():
        return StreamPosition()
    try:
        data = cursor_file.read_bytes()
    except OSError as exc:
        raise OpsError(f"cannot read cursor file: {cursor_file}: {exc.strerror}") from None
    try:
        cursor = loads_json(data)
    except ValueError:
        raise OpsError(f"invalid JSON in cursor file: {cursor_file}") from None
    if cursor is None:
        cursor = {}  # jq: `null | .eventLineOffset // 0` is 0
    if not isinstance(cursor, dict):
        raise OpsError(f"invalid cursor offset in {cursor_file}")
    start = as_nonneg_int(alt(cursor.get("eventLineOffset"), 0))
    if start is None:
        raise OpsError(f"invalid cursor offset in {cursor_file}")
    events = paths.events_file
    stored = StreamPosition.from_json(cursor.get("position"))
    if stored is None or stored.line_offset != start:
        # no usable position (upstream cursor, or eventLineOffset edited by hand): rescan
        return position_for_line_offset(events, start)
    reason = verify_position(events, stored)
    if reason is None:
        return stored
    if reason == "truncated":
        total = count_newlines(events)
        if start > total:
            # keep the contract's message where it applies (scripts match on it)
            raise _exceeds(start, total)
    raise OpsError(
        "events log was rewritten or truncated since the cursor was written "
        f"({reason} at line {start}); reset cursor or use --from-start"
    )


def poll_events(
    paths: LoopPaths,
    *,
    cursor_file: Path | None = None,
    from_start: bool = False,
    max_events: int = 0,
    trace_id: str | None = None,
    now: int,
    emit: Callable[[dict[str, Any]], None],
) -> PollResult:
    """Emit a ``loop_run_event`` envelope for each event after the cursor, then save it.

    ``cursor_file`` defaults to ``LOOPDIR/ops-manager.cursor.json``; ``from_start`` ignores
    it; ``max_events`` > 0 caps the batch. ``emit`` receives each envelope as soon as it is
    built, so an error at line N leaves the envelopes before it emitted and the cursor
    unwritten. The cursor (pretty JSON, atomic) is written only when the whole batch
    succeeded. A final line without ``\\n`` is left for a later poll (DECISIONS Q-5).
    """
    if max_events < 0:
        raise OpsError("--max-events must be a non-negative integer")
    check_runtime_layout(paths)
    cursor_path = cursor_file if cursor_file is not None else paths.default_poll_cursor_file
    events = paths.events_file
    start = StreamPosition() if from_start else read_cursor_start(paths, cursor_path)
    # Sample the size once: the envelopes' eventLineCount and the events read then describe
    # the same bytes even while the runtime keeps appending.
    try:
        size = events.stat().st_size
    except OSError:
        raise OpsError(f"required artifact missing: {events}") from None
    if size < start.byte_offset:
        raise _exceeds(start.line_offset, count_newlines(events))
    total = start.line_offset + count_newlines(events, start.byte_offset, size)
    reader = EventReader(events, start, max_events, end_offset=size)
    source = (str(paths.repo), paths.loop_id)
    for ev in reader:
        emit(build_event_envelope(source, ev, total_lines=total, now=now, trace_id=trace_id))
    position = reader.position
    cursor = {
        "schemaVersion": SCHEMA_VERSION,
        "repoPath": str(paths.repo),
        "loopId": paths.loop_id,
        "eventsFile": paths.relative(events),
        "eventLineOffset": position.line_offset,
        "eventLineCount": total,
        "updatedAt": format_ts(now),
        "position": position.to_json(),
    }
    try:
        write_json(cursor_path, cursor, pretty=True)
    except OSError as exc:
        raise OpsError(f"cannot write cursor file: {cursor_path}: {exc.strerror}") from None
    return PollResult(
        start=start,
        position=position,
        total_lines=total,
        events_emitted=reader.events_emitted,
        torn_tail_bytes=reader.torn_tail_bytes,
        cursor_file=cursor_path,
        cursor=cursor,
    )
