"""The sprite service's reads of the runtime (``loop.md`` §3.12): event batches after a line
offset, so ``service/`` answers ``/ops/events`` without the runtime readers itself
(``docs/architecture.md``, layering). Snapshots are :func:`ops_manager.engine.envelopes.
loop_run_snapshot`."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import attrs

from ops_manager.errors import OpsError
from ops_manager.runtime import SCHEMA_VERSION as SCHEMA_VERSION
from ops_manager.runtime import (
    EventReader,
    StreamPosition,
    build_event_envelope,
    check_runtime_layout,
    count_newlines,
    position_for_line_offset,
    verify_position,
)
from ops_manager.store import LoopPaths

#: positions remembered per feed (a poller resumes where the last answer ended)
REMEMBERED_POSITIONS = 256


@attrs.frozen
class EventBatch:
    """One answer's events: the envelopes, where they end and the log's line count."""

    envelopes: list[dict[str, Any]]
    #: physical lines consumed once the batch is read (the next cursor)
    line_offset: int
    #: physical lines in the log when the batch was read
    total_lines: int


class EventFeed:
    """Event batches of one repo's loops (thread-safe: one instance serves every request).

    It remembers the fingerprinted positions it recently returned: (loop, line offset) ->
    position, so a poller resuming where the last answer ended costs O(new events), not
    O(log), and a log rewritten under a served offset is detected, not silently re-read.
    """

    def __init__(self) -> None:
        self._positions: OrderedDict[tuple[str, int], StreamPosition] = OrderedDict()
        self._lock = threading.Lock()

    def batch(
        self, paths: LoopPaths, start_line: int, limit: int, *, now: int, trace_id: str | None
    ) -> EventBatch:
        """The envelopes of up to ``limit`` events after physical line ``start_line``.

        Raises ``OpsError`` (a missing runtime layout, a cursor beyond the log, a log
        rewritten since that line was served) or ``OSError``.
        """
        check_runtime_layout(paths)
        events_file = paths.events_file
        size = events_file.stat().st_size
        start = self._start(paths, start_line)
        total = start.line_offset + count_newlines(events_file, start.byte_offset, size)
        reader = EventReader(events_file, start, limit, end_offset=size)
        source = (str(paths.repo), paths.loop_id)
        envelopes = [
            build_event_envelope(source, ev, total_lines=total, now=now, trace_id=trace_id)
            for ev in reader
        ]
        position = reader.position
        self._remember(paths.loop_id, position)
        return EventBatch(envelopes, position.line_offset, total)

    def _remember(self, loop_id: str, position: StreamPosition) -> None:
        if position.line_offset == 0 or position.last_line_sha256 is None:
            return
        with self._lock:
            key = (loop_id, position.line_offset)
            self._positions[key] = position
            self._positions.move_to_end(key)
            while len(self._positions) > REMEMBERED_POSITIONS:
                self._positions.popitem(last=False)

    def _start(self, paths: LoopPaths, line_offset: int) -> StreamPosition:
        with self._lock:
            cached = self._positions.get((paths.loop_id, line_offset))
        if cached is not None:
            problem = verify_position(paths.events_file, cached)
            if problem is None:
                return cached
            if problem == "rewritten":
                # the line this offset ended at holds other bytes now: resuming by line
                # number would silently read a different history (a truncation keeps the
                # contract's "cursor offset exceeds available events" answer below)
                raise OpsError(
                    f"events log was rewritten since line {line_offset} was served "
                    "(that line no longer matches); reset with --from-start"
                )
        return position_for_line_offset(paths.events_file, line_offset)
