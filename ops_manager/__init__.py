"""ops-manager: supervise Superloop loop runs from outside their sandbox.

The public API is re-exported here and imported lazily (attribute access triggers the
import), so ``import ops_manager`` stays cheap for CLI commands that need little of it.

- :func:`reconcile` / :class:`ReconcileSettings` / :class:`ReconcileResult`: one observe pass.
- :func:`loop_status`: the operator view of one loop.
- :class:`LoopPaths`: every artifact location of a loop.
- :func:`run_control`: cancel / approve / reject, confirmed from fresh evidence.
- :func:`dispatch`: send new escalations to the alert sinks.
- :func:`load_registry`, :func:`fleet_reconcile`, :func:`fleet_status`, :func:`fleet_policy`,
  :func:`fleet_handoff`: the fleet.
- :class:`OpsError`: the error every operator-facing failure raises.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ops_manager._version import VERSION as __version__  # noqa: F401 (public)

_EXPORTS = {
    "reconcile": "ops_manager.engine.reconcile",
    "ReconcileSettings": "ops_manager.engine.reconcile",
    "ReconcileResult": "ops_manager.engine.reconcile",
    "loop_status": "ops_manager.engine.status",
    "StatusFiles": "ops_manager.engine.status",
    "LoopPaths": "ops_manager.store",
    "OpsError": "ops_manager.errors",
    "Thresholds": "ops_manager.reducers.thresholds",
    "TransportConfig": "ops_manager.transports",
    "run_control": "ops_manager.engine.control",
    "ControlSettings": "ops_manager.engine.control",
    "dispatch": "ops_manager.engine.alert_dispatch",
    "DispatchSettings": "ops_manager.engine.alert_dispatch",
    "telemetry_summary": "ops_manager.engine.telemetry_summary",
    "rebuild": "ops_manager.engine.rebuild",
    "load_registry": "ops_manager.engine.fleet_registry",
    "fleet_reconcile": "ops_manager.engine.fleet_reconcile",
    "FleetReconcileSettings": "ops_manager.engine.fleet_reconcile",
    "fleet_status": "ops_manager.engine.fleet_status",
    "fleet_policy": "ops_manager.engine.fleet_policy",
    "fleet_handoff": "ops_manager.engine.fleet_handoff",
    "HandoffSettings": "ops_manager.engine.fleet_handoff",
    "FleetPaths": "ops_manager.store",
}

if TYPE_CHECKING:
    from ops_manager.engine.alert_dispatch import DispatchSettings, dispatch
    from ops_manager.engine.control import ControlSettings, run_control
    from ops_manager.engine.fleet_handoff import HandoffSettings, fleet_handoff
    from ops_manager.engine.fleet_policy import fleet_policy
    from ops_manager.engine.fleet_reconcile import FleetReconcileSettings, fleet_reconcile
    from ops_manager.engine.fleet_registry import load_registry
    from ops_manager.engine.fleet_status import fleet_status
    from ops_manager.engine.rebuild import rebuild
    from ops_manager.engine.reconcile import ReconcileResult, ReconcileSettings, reconcile
    from ops_manager.engine.status import StatusFiles, loop_status
    from ops_manager.engine.telemetry_summary import telemetry_summary
    from ops_manager.errors import OpsError
    from ops_manager.reducers.thresholds import Thresholds
    from ops_manager.store import FleetPaths, LoopPaths
    from ops_manager.transports import TransportConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_manager' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ControlSettings",
    "DispatchSettings",
    "FleetPaths",
    "FleetReconcileSettings",
    "HandoffSettings",
    "LoopPaths",
    "OpsError",
    "ReconcileResult",
    "ReconcileSettings",
    "StatusFiles",
    "Thresholds",
    "TransportConfig",
    "dispatch",
    "fleet_handoff",
    "fleet_policy",
    "fleet_reconcile",
    "fleet_status",
    "load_registry",
    "loop_status",
    "rebuild",
    "reconcile",
    "run_control",
    "telemetry_summary",
]
