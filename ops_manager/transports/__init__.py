"""Runtime transports: how a reconcile pass observes a loop's runtime.

A transport reads the runtime (beside us on disk for ``local``, over HTTP inside the sprite
for ``sprite_service``) and hands the caller a :class:`RuntimeView` of the runtime's small
state files and a stream of the new events after a position. It never decides anything; reducers do.

This package holds the lookups (:func:`available_transports` through the plugin manager,
:func:`get_transport` for a built-in without it) and re-exports the contract types, which
are defined in ``_contract`` (observe) and ``_control`` (control, built on first access).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops_manager.errors import OpsError
from ops_manager.store import LoopPaths
from ops_manager.transports._config import TransportConfig as TransportConfig

# the contract types live in ``_contract`` (``hookspecs`` names them without importing this
# package, whose lookups load the plugin manager); they are public here
from ops_manager.transports._contract import ControlOutcome as ControlOutcome
from ops_manager.transports._contract import EventTuple as EventTuple
from ops_manager.transports._contract import IngestFailure as IngestFailure
from ops_manager.transports._contract import Observation as Observation
from ops_manager.transports._contract import ObserveRequest as ObserveRequest
from ops_manager.transports._contract import ReadExtent as ReadExtent
from ops_manager.transports._contract import RuntimeView as RuntimeView
from ops_manager.transports._contract import Transport as Transport
from ops_manager.transports._contract import TransportFactory as TransportFactory

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
