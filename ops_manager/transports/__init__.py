"""Runtime transports: how a reconcile pass observes a loop's runtime.

A transport reads the runtime (beside us on disk for ``local``, over HTTP inside the sprite
for ``sprite_service``) and hands the caller a :class:`RuntimeView` of the runtime's small
state files and a stream of the new events after a position. It never decides anything; reducers do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs

from ops_manager.errors import OpsError
from ops_manager.runtime import StreamPosition
from ops_manager.store import LoopPaths


class IngestFailure(Exception):
    """The transport could not observe the runtime; ``code`` is a reconcile failure code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class TransportConfig:
    """Settings a transport is built with (flags of ``reconcile`` / ``control``)."""

    service_base_url: str | None = None
    service_token: str | None = attrs.field(default=None, repr=False)
    retry_attempts: int = 3
    retry_backoff_seconds: int = 1


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


@attrs.frozen
class ObserveRequest:
    """What a reconcile pass asks a transport for."""

    paths: LoopPaths
    start: StreamPosition
    max_events: int
    trace_id: str | None
    now: int


@attrs.frozen
class ReadExtent:
    """How far a transport read, known once its events were consumed."""

    position: StreamPosition
    total_lines: int
    events_emitted: int
    torn_tail_bytes: int = 0


#: one new runtime event: (physical line, parsed raw object, name, timestamp)
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


class Transport(Protocol):
    """What a transport plugin's factory returns."""

    name: str

    def observe(self, request: ObserveRequest) -> Observation:
        """Read the runtime view now and stream the events after ``request.start``.

        Raise :class:`IngestFailure` with a failure code (``snapshot_unavailable``,
        ``events_unavailable``, ``service_request_failed``, ``service_response_invalid``).
        """
        ...


TransportFactory = Callable[[TransportConfig], Transport]


def available_transports() -> dict[str, TransportFactory]:
    """Every registered transport, by name (built-ins and installed plugins)."""
    from ops_manager.plugins import get_plugin_manager

    found: dict[str, TransportFactory] = {}

    def register(name: str, factory: TransportFactory) -> None:
        if name in found:
            raise OpsError(f"transport '{name}' is registered twice")
        found[name] = factory

    get_plugin_manager().hook.opsmgr_register_transports(register=register)
    return found


def get_transport(name: str, config: TransportConfig) -> Transport:
    """Build the transport ``name`` or fail with a message naming what is missing."""
    factories = available_transports()
    factory = factories.get(name)
    if factory is None:
        known = ", ".join(sorted(factories)) or "none"
        raise OpsError(
            f"transport '{name}' is not available (no installed plugin provides it; "
            f"available: {known})"
        )
    return factory(config)


def default_events_path(paths: LoopPaths) -> Path:
    """The runtime's event log for a loop."""
    return paths.events_file
