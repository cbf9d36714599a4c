"""Fleet status contract: key orders, reason families, :data:`SectionBuilder` and helpers (PURE)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ops_manager.model._json import as_nonneg_int
from ops_manager.reducers.fleet_policy import GATING_REASONS, SAFETY_REASONS
from ops_manager.reducers.fleet_rollout import ROLLOUT_REASONS

SCHEMA_VERSION = "v1"

#: every top-level key of the status document, in contract order
STATUS_KEY_ORDER = (
    "schemaVersion",
    "generatedAt",
    "source",
    "fleet",
    "healthRollup",
    "exceptions",
    "policy",
    "handoff",
    "autonomous",
    "loops",
    "traceLinkage",
    "latestTelemetry",
    "latestHandoffTelemetry",
    "files",
)
TRACE_LINKAGE_ORDER = ("fleetTraceId", "policyTraceId", "loopTraceIds", "sharedTraceId")
FILES_ORDER = (
    "registryFile",
    "fleetStateFile",
    "policyStateFile",
    "fleetTelemetryFile",
    "handoffStateFile",
    "handoffTelemetryFile",
)
#: nested objects a section builder may extend, with their key order
NESTED_ORDERS: Mapping[str, tuple[str, ...]] = {
    "traceLinkage": TRACE_LINKAGE_ORDER,
    "files": FILES_ORDER,
}
HEALTH_BUCKETS = ("healthy", "degraded", "critical", "unknown")
ADVISORY = "advisory"

#: ``policy.topCandidates``: how many, and the severity ranks of the stable sort
TOP_CANDIDATES = 5
SEVERITY_ORDER = {"critical": 0, "warning": 1}

#: PAR keys of ``byPath.policyGated``: the gating reasons (§3.6) and the safety rails (§3.9)
POLICY_GATE_REASONS = frozenset((*GATING_REASONS, *SAFETY_REASONS))
#: PAR keys of ``byPath.rolloutGated``: scope, canary, manual/auto pause and its triggers
ROLLOUT_GATE_REASONS = frozenset(ROLLOUT_REASONS)
#: PAR keys summed into ``safetyGateDecisions.blockedCount``
BLOCKED_COUNT_REASONS = frozenset((*ROLLOUT_REASONS, *SAFETY_REASONS))

SUPPRESSION_POLICY_GATED = "autonomous_suppression_policy_gated"
SUPPRESSION_ROLLOUT_GATED = "autonomous_suppression_rollout_gated"
SUPPRESSION_GOVERNANCE_GATED = "autonomous_suppression_governance_gated"
SUPPRESSION_TRANSPORT_GATED = "autonomous_suppression_transport_gated"
#: ``byPath`` entry -> the suppression reason code it contributes when it blocks anything
SUPPRESSION_CODES = {
    "policyGated": SUPPRESSION_POLICY_GATED,
    "rolloutGated": SUPPRESSION_ROLLOUT_GATED,
    "governanceGated": SUPPRESSION_GOVERNANCE_GATED,
    "transportGated": SUPPRESSION_TRANSPORT_GATED,
}
ARTIFACT_KEYS = ("stateFile", "healthFile", "cursorFile", "reconcileTelemetryFile")

#: A section builder gets the status document built so far (read it, do not mutate it) and
#: returns keys to add: new top-level sections (``{"policy": {...}}``) and/or entries for a
#: nested object listed in :data:`NESTED_ORDERS` (``{"files": {"policyStateFile": ...}}``,
#: merged into the existing object). Extra inputs (policy state, handoff state ...) reach the
#: builder by closure, e.g. ``functools.partial(policy_section, policy_state)``.
SectionBuilder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def default_if_none(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def drop_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def unique_sorted(values: Any) -> list[str]:
    """jq ``unique`` over the string members (byte order = code point order for UTF-8)."""
    return sorted({v for v in values if isinstance(v, str)})


def count_or(value: Any, fallback: int) -> int:
    count = as_nonneg_int(value)
    return fallback if count is None else count
