"""Pure reducers: projections and decisions as functions of data.

Nothing in this package touches files, the network, the clock, the environment, randomness
or logging; time arrives as an ``int`` epoch ``now``. The shell (``ops_manager.engine`` and
the CLI) reads artifacts, calls these, and writes what they return.
"""

from ops_manager.reducers.escalations import (
    divergence_escalation,
    divergence_escalation_decision,
    health_escalation,
    health_escalation_decision,
    ordering_drift_escalation,
    profile_drift_escalation,
)
from ops_manager.reducers.health import (
    HEALTH_REASON_FOR_FAILURE,
    HEALTH_RULES,
    HealthInputs,
    HealthSignals,
    collect_reasons,
    compute_health,
    extract_signals,
    health_status,
    reason_for_failure,
)
from ops_manager.reducers.heartbeat import HeartbeatObservation, freshness, observe_heartbeat
from ops_manager.reducers.lifecycle import (
    SnapshotView,
    divergence_flags,
    project_lifecycle,
    validate_event_envelope,
    validate_snapshot_envelope,
)
from ops_manager.reducers.run_status import (
    ACTIVE_PHASE_EVENTS,
    ERROR_STATUSES,
    RUN_STATUSES,
    STOP_EVENTS,
    coerce_iteration,
    derive_run_identity,
    derive_run_status,
    event_name,
)
from ops_manager.reducers.sequence import (
    REPLAY_EXEMPT_VIOLATIONS,
    SeqBatch,
    evaluate_sequence,
    sequence_telemetry_row,
)
from ops_manager.reducers.status import StatusInputs, build_status
from ops_manager.reducers.stream import TERMINAL_EVENTS, StreamFold, fold_events
from ops_manager.reducers.thresholds import (
    PROFILE_VALUE_KEYS,
    ResolvedProfile,
    Thresholds,
    apply_precedence,
    profile_names,
    resolve_profile,
    validate_catalog,
    validate_thresholds,
)
from ops_manager.reducers.transport import next_transport_health

__all__ = [
    "ACTIVE_PHASE_EVENTS",
    "ERROR_STATUSES",
    "HEALTH_REASON_FOR_FAILURE",
    "HEALTH_RULES",
    "PROFILE_VALUE_KEYS",
    "REPLAY_EXEMPT_VIOLATIONS",
    "RUN_STATUSES",
    "STOP_EVENTS",
    "TERMINAL_EVENTS",
    "HealthInputs",
    "HealthSignals",
    "HeartbeatObservation",
    "ResolvedProfile",
    "SeqBatch",
    "SnapshotView",
    "StatusInputs",
    "StreamFold",
    "Thresholds",
    "apply_precedence",
    "build_status",
    "coerce_iteration",
    "collect_reasons",
    "compute_health",
    "derive_run_identity",
    "derive_run_status",
    "divergence_escalation",
    "divergence_escalation_decision",
    "divergence_flags",
    "evaluate_sequence",
    "event_name",
    "extract_signals",
    "fold_events",
    "freshness",
    "health_escalation",
    "health_escalation_decision",
    "health_status",
    "next_transport_health",
    "observe_heartbeat",
    "ordering_drift_escalation",
    "profile_drift_escalation",
    "profile_names",
    "project_lifecycle",
    "reason_for_failure",
    "resolve_profile",
    "sequence_telemetry_row",
    "validate_catalog",
    "validate_event_envelope",
    "validate_snapshot_envelope",
    "validate_thresholds",
]
