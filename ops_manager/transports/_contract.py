"""The transport contract: the types a transport plugin implements and returns.

Public as ``ops_manager.transports.<Name>`` (the package re-exports them, and they say so in
``__module__``). They live apart from the package's plugin lookups
(:func:`~ops_manager.transports.available_transports`, ``get_transport``) so that
:mod:`ops_manager.hookspecs` can name them in its hook signatures without depending on the
module that loads the plugin manager: that was the ``hookspecs -> transports -> plugins ->
hookspecs`` import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ops_manager.runtime import StreamPosition
from ops_manager.store import LoopPaths
from ops_manager.transports._config import TransportConfig

if TYPE_CHECKING:
    from ops_manager.transports._control import ControlExecution, ControlRequest


class IngestFailure(Exception):
    """The transport could not observe the runtime; ``code`` is a reconcile failure code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class RuntimeView:
    """The snapshot half of an observation (what ``loop_run_snapshot`` would carry)."""

    repo_path: str
    run_id: str
    iteration: int | float
    status: str
    summary: dict[str, Any] | None
    superloop_state: Any
    approval: Any
    heartbeat: Any
    last_event: dict[str, Any] | None
    summary_updated_at: Any = None
    #: the parsed ``.superloop/active-run.json`` (``None`` when absent)
    active_run: Any = None
    #: whether ``active_run`` is known: an older service's snapshot may not carry it
    active_run_known: bool = False


@attrs.frozen
class ObserveRequest:
    """What a reconcile pass asks a transport for."""

    paths: LoopPaths
    start: StreamPosition
    max_events: int
    trace_id: str | None
    now: int
    #: a line whose ``raw`` the caller fingerprints (a replay's check of the previously last
    #: ingested event): it must arrive exact, like the last event of the stream
    watch_line: int | None = None


@attrs.frozen
class ReadExtent:
    """How far a transport read, known once its events were consumed."""

    position: StreamPosition
    total_lines: int
    events_emitted: int
    torn_tail_bytes: int = 0


#: one new runtime event: (physical line, parsed raw object, name, timestamp). Only its
#: strings are sure to be exact: a transport may parse for the fold, so a number of ``raw``
#: can differ from the stdlib ``json`` value (an integer beyond 64 bits read as a float),
#: except in the last event of the stream and at ``ObserveRequest.watch_line``
EventTuple = tuple[int, dict[str, Any], str, str]


class Observation(Protocol):
    """What :meth:`Transport.observe` returns.

    Iterate :attr:`events` to the end (it streams: memory does not grow with the number of
    events), then call :meth:`extent`. Iterating may raise :class:`IngestFailure`.
    """

    view: RuntimeView

    @property
    def events(self) -> Iterator[EventTuple]: ...

    def extent(self) -> ReadExtent: ...


class ControlOutcome(Protocol):
    """What one loop-level control call returned to ``fleet-handoff``.

    :class:`~ops_manager.engine.control.ControlResult` is one; so is the external control
    command's :class:`~ops_manager.transports.external_command.CommandOutcome`.
    """

    @property
    def exit_code(self) -> int:
        """0 confirmed / executed, 2 ambiguous, anything else failed (``fleet.md`` §2.5)."""
        ...

    @property
    def entry(self) -> Mapping[str, Any] | None:
        """The control's JSON document (the ``intents.jsonl`` entry), ``None`` if none."""
        ...


class Transport(Protocol):
    """What a transport plugin's factory returns."""

    name: str

    def control(self, request: ControlRequest) -> ControlExecution:
        """Execute an intent against the runtime and (unless ``request.confirm`` is false)
        confirm it from fresh runtime evidence. Never raises for runtime failures: a failed
        command is ``status="failed_command"``."""
        ...

    def observe(self, request: ObserveRequest) -> Observation:
        """Read the runtime view now and stream the events after ``request.start``.

        Raise :class:`IngestFailure` with a failure code (``snapshot_unavailable``,
        ``events_unavailable``, ``service_request_failed``, ``service_response_invalid``).
        """
        ...


TransportFactory = Callable[[TransportConfig], Transport]


#: public as ``ops_manager.transports.<Name>`` (what docs and reprs of the class show)
for _cls in (
    IngestFailure,
    RuntimeView,
    ObserveRequest,
    ReadExtent,
    Observation,
    ControlOutcome,
    Transport,
):
    _cls.__module__ = "ops_manager.transports"
