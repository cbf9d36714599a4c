"""Fleet status: the operator's posture view of the fleet (``fleet.md`` §2.4). PURE.

:func:`build_fleet_status` folds the normalised registry, the fleet ``state.json`` written by
fleet-reconcile, the last fleet reconcile telemetry row, the policy state, the handoff state
and the last handoff telemetry row into the status document. Each part is its own function
(:func:`fleet_section`, :func:`health_rollup`, :func:`exception_buckets`, :func:`loop_rows`,
:func:`trace_linkage`, :func:`latest_telemetry_section`, :func:`policy_section`,
:func:`autonomous_section`, :func:`safety_gate_decisions`, :func:`rollout_view`) so other
views can reuse them.

The sections fed by the policy and handoff artifacts (``policy``, ``handoff``,
``autonomous``, ``latestHandoffTelemetry``, ``traceLinkage.policyTraceId``) are one section
builder, :func:`autonomy_sections`, composed first; callers may compose more builders through
``extra_sections`` (see :data:`SectionBuilder`). :func:`build_fleet_status` merges what each
builder returns and puts every key in the contract's position (:data:`STATUS_KEY_ORDER`,
:data:`TRACE_LINKAGE_ORDER`, :data:`FILES_ORDER`), so a builder never has to care about key
order. ``policy``, ``handoff``, ``autonomous`` and ``latestHandoffTelemetry`` are always
present, ``null`` when their artifact is absent (``autonomous`` only when both states are).

The handoff-fed pieces come from :mod:`ops_manager.reducers.fleet_handoff`
(``status_handoff_section``, ``outcome_rollup``, ``transport_gate_reason_counts``,
``status_autonomous_handoff``, ``status_latest_handoff_telemetry``), the governance posture
from :mod:`ops_manager.reducers.fleet_governance`, the gate reason families from
:mod:`ops_manager.reducers.fleet_policy` and :mod:`ops_manager.reducers.fleet_rollout`.

Safety-gate paths (``autonomous.safetyGateDecisions.byPath``); ``PAR`` is the policy's
``summary.byAutonomyReason`` (the reasons of unsuppressed candidates):

- ``policyGated``: ``byReason`` = PAR restricted to the gating reasons (§3.6) and the four
  safety rails (§3.9), in PAR's order; ``blockedCount`` = their sum;
- ``rolloutGated``: PAR restricted to the six rollout reasons; ``blockedCount`` = their sum;
- ``governanceGated``: ``reasonCodes`` = the governance reason codes; ``blockedCount`` = the
  policy's unsuppressed count while governance blocks autonomy, else 0;
- ``transportGated``: failed/ambiguous results of ``sprite_service`` intents by reasonCode;
  ``blockedCount`` = their sum.

``suppressionReasonCodes`` names every path whose ``blockedCount`` is positive; the top-level
``blockedCount`` sums PAR over the rollout reasons and the safety rails (upstream's formula).

Differences from upstream (``docs/compatibility.md``): ``fleet.partialFailure`` uses the same
counts as ``fleet.failedCount``/``successCount`` (upstream read the raw state fields, so a
state without counts could show ``fleet_partial_failure`` with ``partialFailure: false``);
``healthRollup.unknown`` counts every health status other than healthy/degraded/critical, so
the four buckets always add up to the number of loops; values of the wrong type in a
hand-edited state fall back to what the results say instead of crashing. Likewise the policy
counts (``candidateCount``, ``unsuppressedCount``, ``suppressedCount``, ``autoEligibleCount``,
``manualOnlyCount``) fall back to counting the policy's candidates when a hand-edited policy
state lacks them (upstream printed 0); ``false`` is a value, not "absent"
(``autopause.enabled: false`` stays ``false``, DECISIONS rule 3).
"""

from __future__ import annotations

from ops_manager.reducers.fleet_status._autonomy import (
    autonomous_section,
    autonomy_reason_counts,
    autonomy_sections,
    policy_counts,
    policy_section,
    rollout_view,
    safety_gate_decisions,
    top_candidates,
)
from ops_manager.reducers.fleet_status._build import (
    build_fleet_status,
)
from ops_manager.reducers.fleet_status._contract import (
    ADVISORY,
    ARTIFACT_KEYS,
    BLOCKED_COUNT_REASONS,
    FILES_ORDER,
    HEALTH_BUCKETS,
    NESTED_ORDERS,
    POLICY_GATE_REASONS,
    ROLLOUT_GATE_REASONS,
    SCHEMA_VERSION,
    SEVERITY_ORDER,
    STATUS_KEY_ORDER,
    SUPPRESSION_CODES,
    SUPPRESSION_GOVERNANCE_GATED,
    SUPPRESSION_POLICY_GATED,
    SUPPRESSION_ROLLOUT_GATED,
    SUPPRESSION_TRANSPORT_GATED,
    TOP_CANDIDATES,
    TRACE_LINKAGE_ORDER,
    SectionBuilder,
)
from ops_manager.reducers.fleet_status._fleet import (
    exception_buckets,
    fleet_reason_codes,
    fleet_results,
    fleet_section,
    fleet_state_problem,
    health_rollup,
    latest_telemetry_section,
    loop_row,
    loop_rows,
    trace_linkage,
)

__all__ = [
    "ADVISORY",
    "ARTIFACT_KEYS",
    "BLOCKED_COUNT_REASONS",
    "FILES_ORDER",
    "HEALTH_BUCKETS",
    "NESTED_ORDERS",
    "POLICY_GATE_REASONS",
    "ROLLOUT_GATE_REASONS",
    "SCHEMA_VERSION",
    "SEVERITY_ORDER",
    "STATUS_KEY_ORDER",
    "SUPPRESSION_CODES",
    "SUPPRESSION_GOVERNANCE_GATED",
    "SUPPRESSION_POLICY_GATED",
    "SUPPRESSION_ROLLOUT_GATED",
    "SUPPRESSION_TRANSPORT_GATED",
    "TOP_CANDIDATES",
    "TRACE_LINKAGE_ORDER",
    "SectionBuilder",
    "autonomous_section",
    "autonomy_reason_counts",
    "autonomy_sections",
    "build_fleet_status",
    "exception_buckets",
    "fleet_reason_codes",
    "fleet_results",
    "fleet_section",
    "fleet_state_problem",
    "health_rollup",
    "latest_telemetry_section",
    "loop_row",
    "loop_rows",
    "policy_counts",
    "policy_section",
    "rollout_view",
    "safety_gate_decisions",
    "top_candidates",
    "trace_linkage",
]
