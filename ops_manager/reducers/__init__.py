"""Pure reducers: projections and decisions as functions of data.

Nothing in this package touches files, the network, the clock, the environment, randomness
or logging; time arrives as an ``int`` epoch ``now``. The shell (``ops_manager.engine`` and
the CLI) reads artifacts, calls these, and writes what they return.

The names below are re-exported lazily (PEP 562): importing one reducer does not import
them all, which keeps a command's start-up to the modules it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ACTIVE_PHASE_EVENTS": "ops_manager.reducers.run_status",
    "ERROR_STATUSES": "ops_manager.reducers.run_status",
    "HEALTH_REASON_FOR_FAILURE": "ops_manager.reducers.health",
    "HEALTH_RULES": "ops_manager.reducers.health",
    "HealthInputs": "ops_manager.reducers.health",
    "HealthSignals": "ops_manager.reducers.health",
    "HeartbeatObservation": "ops_manager.reducers.heartbeat",
    "PROFILE_VALUE_KEYS": "ops_manager.reducers.thresholds",
    "REPLAY_EXEMPT_VIOLATIONS": "ops_manager.reducers.sequence",
    "RUN_STATUSES": "ops_manager.reducers.run_status",
    "ResolvedProfile": "ops_manager.reducers.thresholds",
    "STOP_EVENTS": "ops_manager.reducers.run_status",
    "SeqBatch": "ops_manager.reducers.sequence",
    "SnapshotView": "ops_manager.reducers.lifecycle",
    "StatusInputs": "ops_manager.reducers.status",
    "StreamFold": "ops_manager.reducers.stream",
    "TERMINAL_EVENTS": "ops_manager.reducers.stream",
    "Thresholds": "ops_manager.reducers.thresholds",
    "apply_precedence": "ops_manager.reducers.thresholds",
    "build_status": "ops_manager.reducers.status",
    "coerce_iteration": "ops_manager.reducers.run_status",
    "collect_reasons": "ops_manager.reducers.health",
    "compute_health": "ops_manager.reducers.health",
    "derive_run_identity": "ops_manager.reducers.run_status",
    "derive_run_status": "ops_manager.reducers.run_status",
    "divergence_escalation": "ops_manager.reducers.escalations",
    "divergence_escalation_decision": "ops_manager.reducers.escalations",
    "divergence_flags": "ops_manager.reducers.lifecycle",
    "evaluate_sequence": "ops_manager.reducers.sequence",
    "event_name": "ops_manager.reducers.run_status",
    "extract_signals": "ops_manager.reducers.health",
    "fold_events": "ops_manager.reducers.stream",
    "freshness": "ops_manager.reducers.heartbeat",
    "health_escalation": "ops_manager.reducers.escalations",
    "health_escalation_decision": "ops_manager.reducers.escalations",
    "health_status": "ops_manager.reducers.health",
    "next_transport_health": "ops_manager.reducers.transport",
    "observe_heartbeat": "ops_manager.reducers.heartbeat",
    "ordering_drift_escalation": "ops_manager.reducers.escalations",
    "profile_drift_escalation": "ops_manager.reducers.escalations",
    "profile_names": "ops_manager.reducers.thresholds",
    "project_lifecycle": "ops_manager.reducers.lifecycle",
    "reason_for_failure": "ops_manager.reducers.health",
    "resolve_profile": "ops_manager.reducers.thresholds",
    "sequence_telemetry_row": "ops_manager.reducers.sequence",
    "validate_catalog": "ops_manager.reducers.thresholds",
    "validate_event_envelope": "ops_manager.reducers.lifecycle",
    "validate_snapshot_envelope": "ops_manager.reducers.lifecycle",
    "validate_thresholds": "ops_manager.reducers.thresholds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the defining module on first access of a re-exported name."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
