"""The ``local`` transport: the manager runs beside the loop and reads its files directly.

Registered through :func:`opsmgr_register_transports` like any plugin. Parsed events go
straight to the caller's fold; no envelope is built per event (envelopes exist only where
data leaves the process), which keeps a reconcile close to the cost of parsing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ops_manager.errors import OpsError
from ops_manager.reducers.run_status import derive_run_identity, derive_run_status
from ops_manager.runtime import (
    EventReader,
    StreamPosition,
    check_runtime_layout,
    last_event,
    latest_summary_entry,
    position_for_line_offset,
    read_runtime_files,
    verify_position,
)
from ops_manager.store import LoopPaths
from ops_manager.transports import (
    EventTuple,
    IngestFailure,
    ObserveRequest,
    ReadExtent,
    RuntimeView,
    Transport,
    TransportConfig,
    TransportFactory,
)

if TYPE_CHECKING:
    # built on first use (see ops_manager.transports.__getattr__): a pass never controls
    from ops_manager.transports import ControlExecution, ControlRequest


def read_runtime_view(paths: LoopPaths) -> RuntimeView:
    """The snapshot half of an observation, from the runtime's files (raises OpsError)."""
    check_runtime_layout(paths)
    files = read_runtime_files(paths)
    last = last_event(paths)
    latest = latest_summary_entry(files.run_summary)
    run_id, iteration = derive_run_identity(
        run_id_override=None, latest=latest, last_event=last, state=files.superloop_state
    )
    status = derive_run_status(
        approval=files.approval,
        latest=latest,
        state=files.superloop_state,
        last_event=last,
        loop_id=paths.loop_id,
    )
    summary_updated = (
        files.run_summary.get("updated_at") if isinstance(files.run_summary, dict) else None
    )
    return RuntimeView(
        repo_path=str(paths.repo),
        run_id=run_id,
        iteration=iteration,
        status=status,
        summary=latest,
        superloop_state=files.superloop_state,
        approval=files.approval,
        heartbeat=files.heartbeat,
        last_event=last,
        summary_updated_at=summary_updated,
        active_run=files.active_run,
        active_run_known=True,
    )


class _LocalObservation:
    def __init__(self, view: RuntimeView, reader: EventReader, watch_line: int | None) -> None:
        self.view = view
        self._reader = reader
        self._watch_line = watch_line

    @property
    def events(self) -> Iterator[EventTuple]:
        # the reader hands over lists of events; chaining them costs the fold no generator
        # step per event (the one generator below runs once per list)
        return itertools.chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[list[EventTuple]]:
        try:
            # fold-grade tuples (see EventReader.tuples): exact raw for the last event and
            # the watched line, the two that leave the fold
            yield from self._reader.batches(self._watch_line)
        except OpsError as exc:
            raise IngestFailure("events_unavailable", f"error: {exc.message}") from None

    def extent(self) -> ReadExtent:
        reader = self._reader
        return ReadExtent(
            position=reader.position,
            total_lines=reader.total_lines,
            events_emitted=reader.events_emitted,
            torn_tail_bytes=reader.torn_tail_bytes,
        )


class LocalTransport:
    """Reads ``.superloop/`` of a repo on this machine."""

    name = "local"

    def __init__(self, config: TransportConfig) -> None:
        self.config = config

    def control(self, request: ControlRequest) -> ControlExecution:
        """Run the Superloop CLI for the intent, then confirm it from a fresh snapshot."""
        from ops_manager.transports.local_control import execute_local_control

        return execute_local_control(request, self.config)

    def observe(self, request: ObserveRequest) -> _LocalObservation:
        """Read the runtime files now; stream the events after ``request.start``."""
        try:
            view = read_runtime_view(request.paths)
        except OpsError as exc:
            raise IngestFailure("snapshot_unavailable", f"error: {exc.message}") from None
        try:
            start = _resolve_start(request)
            reader = EventReader(request.paths.events_file, start, request.max_events)
        except OpsError as exc:
            raise IngestFailure("events_unavailable", f"error: {exc.message}") from None
        return _LocalObservation(view, reader, request.watch_line)


def _resolve_start(request: ObserveRequest) -> StreamPosition:
    """Turn the stored position into a verified byte position (never silently re-read)."""
    start = request.start
    events = request.paths.events_file
    if start.line_offset == 0:
        return StreamPosition()
    if start.last_line_sha256 is None:
        # an upstream-written cursor: only a line offset; find its byte offset once
        return position_for_line_offset(events, start.line_offset)
    problem = verify_position(events, start)
    if problem is not None:
        raise OpsError(
            f"events log was {problem} since the cursor was committed "
            f"(line {start.line_offset} no longer matches); reset with --from-start"
        )
    return start


#: the hooks this built-in implements. They are marked with ``hookspecs.hookimpl`` when the
#: plugin manager registers the module (``plugins._manager``), not here: importing pluggy
#: cost every reconcile pass ~2 ms, and a pass gets its transport from
#: ``transports._builtin_factory``, which calls the hook directly.
OPSMGR_HOOKIMPLS = ("opsmgr_register_transports",)


def opsmgr_register_transports(register: Callable[[str, TransportFactory], None]) -> None:
    """Provide the ``local`` transport."""
    factory: Callable[[TransportConfig], Transport] = LocalTransport
    register("local", factory)
