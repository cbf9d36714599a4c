"""ops-manager: supervise Superloop loop runs from outside their sandbox.

The public API is re-exported here and imported lazily (attribute access triggers the
import), so ``import ops_manager`` stays cheap for CLI commands that need little of it.

- :func:`reconcile` / :class:`ReconcileSettings` / :class:`ReconcileResult`: one observe pass.
- :func:`loop_status`: the operator view of one loop.
- :class:`LoopPaths`: every artifact location of a loop.
- :class:`OpsError`: the error every operator-facing failure raises.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
}

if TYPE_CHECKING:
    from ops_manager.engine.reconcile import ReconcileResult, ReconcileSettings, reconcile
    from ops_manager.engine.status import StatusFiles, loop_status
    from ops_manager.errors import OpsError
    from ops_manager.reducers.thresholds import Thresholds
    from ops_manager.store import LoopPaths
    from ops_manager.transports import TransportConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_manager' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "LoopPaths",
    "OpsError",
    "ReconcileResult",
    "ReconcileSettings",
    "StatusFiles",
    "Thresholds",
    "TransportConfig",
    "loop_status",
    "reconcile",
]
