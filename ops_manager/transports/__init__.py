"""Runtime transports: how a reconcile pass observes a loop's runtime.

A transport reads the runtime (beside us on disk for ``local``, over HTTP inside the sprite
for ``sprite_service``) and hands the caller a :class:`RuntimeView` of the runtime's small
state files and a stream of the new events after a position. It never decides anything; reducers do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ops_manager.errors import OpsError
from ops_manager.runtime import StreamPosition
from ops_manager.store import LoopPaths
from ops_manager.transports._config import TransportConfig as TransportConfig


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


CONTROL_INTENTS = ("cancel", "approve", "reject")


if TYPE_CHECKING:
    from ops_manager.transports._control import ConfirmResult as ConfirmResult
    from ops_manager.transports._control import ControlExecution as ControlExecution
    from ops_manager.transports._control import ControlRequest as ControlRequest
    from ops_manager.transports._control import ControlSettings as ControlSettings
    from ops_manager.transports._control import IntentConfirmer as IntentConfirmer

#: the control value types, built on first use (a reconcile pass never needs them: four
#: attrs classes are ~2 ms of every CLI process); ``from ops_manager.transports import
#: ControlRequest`` works as before
_CONTROL_TYPES = (
    "ConfirmResult",
    "ControlExecution",
    "ControlRequest",
    "ControlSettings",
    "IntentConfirmer",
)


def __getattr__(name: str) -> Any:
    if name in _CONTROL_TYPES:
        import ops_manager.transports._control as control

        value = getattr(control, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def available_transports(*, builtin_only: bool = False) -> dict[str, TransportFactory]:
    """Every registered transport, by name (built-ins, plus installed plugins unless
    ``builtin_only``)."""
    from ops_manager.plugins import get_plugin_manager

    found: dict[str, TransportFactory] = {}

    def register(name: str, factory: TransportFactory) -> None:
        if name in found:
            raise OpsError(f"transport '{name}' is registered twice")
        found[name] = factory

    pm = get_plugin_manager(load_entry_points=not builtin_only)
    pm.hook.opsmgr_register_transports(register=register)
    return found


#: the built-in transports by name, and the module that registers each one
BUILTIN_TRANSPORTS = {
    "local": "ops_manager.transports.local",
    "sprite_service": "ops_manager.transports.sprite_service",
}


def _builtin_factory(name: str) -> TransportFactory | None:
    # Only the named built-in is imported, and its own register hook is called: a local
    # pass never loads the service client or the plugin manager's other built-ins (the
    # same factory the plugin manager would return for a built-in name, without its cost).
    module_name = BUILTIN_TRANSPORTS.get(name)
    if module_name is None:
        return None
    import importlib

    found: dict[str, TransportFactory] = {}
    importlib.import_module(module_name).opsmgr_register_transports(
        register=lambda n, f: found.setdefault(n, f)
    )
    return found.get(name)


def get_transport(name: str, config: TransportConfig) -> Transport:
    """Build the transport ``name`` or fail with a message naming what is missing.

    Built-in names resolve by importing only that transport's module (no scan of installed
    distributions, no plugin manager); any other name loads the ``ops_manager`` entry points
    first.
    """
    factory = _builtin_factory(name)
    if factory is None:
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
