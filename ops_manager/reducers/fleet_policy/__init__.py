"""Fleet policy: candidates, suppression, dedupe, autonomous gating and safety rails.

Pure (``fleet.md`` §2.3, §3.3-§3.9, §4.2). The shell hands in the normalised registry, the
fleet state, an index folded from the policy history, the handoff telemetry rows, the previous
policy state and ``now``; :func:`evaluate_policy` returns the new ``policy-state.json``, the
history / telemetry / governance rows to append, and every decision with its named reason.

The chain, per candidate (``docs/fleet-autonomy.md`` walks through it):

1. **candidates** (§3.3): ``status failed`` -> ``reconcile_failed``; ``healthStatus critical``
   -> ``health_critical``; ``degraded`` -> ``health_degraded``; first of a duplicate id wins;
   sorted by ``(loopId, category)``.
2. **suppression** (§3.4): ``policy.suppressions[loopId]`` (scope ``loop``) over
   ``policy.suppressions["*"]`` (scope ``global``) -> ``registry_policy_suppression``.
3. **dedupe** (§3.5): an unsuppressed emission of the same candidate less than the dedupe
   window ago (anchored on the last *unsuppressed* history row, so the window never slides)
   -> scope ``cooldown``, ``advisory_cooldown_active``.
4. **gating** (§3.6) -> :data:`GATING_REASONS` (mode, suppressed, allowlists, thresholds) plus
   the rollout reasons of :mod:`ops_manager.reducers.fleet_rollout` (scope, canary, pause).
5. **safety rails** (§3.9), only for candidates with no gating reason, in this order, at most
   one each: kill switch, autonomous cooldown, per-run cap, per-loop cap
   (:func:`safety_rail`). Eligible candidates consume the caps; blocked ones do not.

A candidate is autonomous-eligible exactly when its final reason list is empty.
"""

from __future__ import annotations

from ops_manager.reducers.fleet_policy._evaluate import (
    PolicyEvaluation,
    PolicyFiles,
    PolicyInputs,
    evaluate_policy,
    policy_mode,
    policy_reason_codes,
)
from ops_manager.reducers.fleet_policy._gating import (
    AutonomyControls,
    CandidateDecision,
    GateDecision,
    RailInput,
    apply_safety_rails,
    decide_candidates,
    gate_candidate,
    safety_rail,
)
from ops_manager.reducers.fleet_policy._history import (
    COOLDOWN_SUPPRESSION_DECISION,
    AutonomousCooldown,
    DedupeWindow,
    HistoryIndex,
    Suppression,
    autonomous_cooldown,
    dedupe_window,
    index_history,
    registry_suppression,
)
from ops_manager.reducers.fleet_policy._readers import (
    CandidateAutonomy,
    autonomous_eligible_candidates,
    candidate_autonomy,
    manual_only_candidates,
    unsuppressed_candidates,
)
from ops_manager.reducers.fleet_policy._taxonomy import (
    ADVISORY,
    AUTONOMOUS_COOLDOWN_ACTIVE,
    CANDIDATE_SUPPRESSED,
    CATEGORIES,
    CATEGORY_NOT_ALLOWLISTED,
    CATEGORY_PROFILES,
    CONFIDENCE_BELOW_THRESHOLD,
    CONFIDENCE_RANK,
    COOLDOWN_SUPPRESSION,
    FLEET_ACTION_REQUIRED,
    FLEET_ACTIONS_DEDUPED,
    FLEET_ACTIONS_POLICY_SUPPRESSED,
    FLEET_ACTIONS_SUPPRESSED,
    FLEET_AUTO_AUTOPAUSE_TRIGGERED,
    FLEET_AUTO_BLOCKED,
    FLEET_AUTO_ELIGIBLE,
    FLEET_AUTO_KILL_SWITCH,
    FLEET_AUTO_PAUSED,
    FLEET_AUTO_ROLLOUT_GATED,
    FLEET_AUTO_SAFETY_BLOCKED,
    GATING_REASONS,
    HEALTH_CRITICAL,
    HEALTH_DEGRADED,
    HISTORY_CATEGORY,
    INTENT_NOT_ALLOWLISTED,
    KILL_SWITCH_ENABLED,
    MAX_PER_LOOP_EXCEEDED,
    MAX_PER_RUN_EXCEEDED,
    MODE_NOT_GUARDED_AUTO,
    MODES,
    NO_ACTION_REQUIRED,
    NO_RECOMMENDED_INTENT,
    RECOMMENDED_INTENT,
    RECONCILE_FAILED,
    REGISTRY_SUPPRESSION,
    SAFETY_REASONS,
    SCOPE_COOLDOWN,
    SCOPE_GLOBAL,
    SCOPE_LOOP,
    SEVERITY_BELOW_THRESHOLD,
    SEVERITY_RANK,
    SOURCE_COOLDOWN,
    SOURCE_GLOBAL,
    SOURCE_LOOP,
    SUPPRESSION_PRECEDENCE,
    TAXONOMY_VERSION,
    TELEMETRY_CATEGORY,
    CandidateSignal,
    CategoryProfile,
    generate_candidates,
    taxonomy_json,
)

__all__ = [
    "ADVISORY",
    "AUTONOMOUS_COOLDOWN_ACTIVE",
    "CANDIDATE_SUPPRESSED",
    "CATEGORIES",
    "CATEGORY_NOT_ALLOWLISTED",
    "CATEGORY_PROFILES",
    "CONFIDENCE_BELOW_THRESHOLD",
    "CONFIDENCE_RANK",
    "COOLDOWN_SUPPRESSION",
    "COOLDOWN_SUPPRESSION_DECISION",
    "FLEET_ACTIONS_DEDUPED",
    "FLEET_ACTIONS_POLICY_SUPPRESSED",
    "FLEET_ACTIONS_SUPPRESSED",
    "FLEET_ACTION_REQUIRED",
    "FLEET_AUTO_AUTOPAUSE_TRIGGERED",
    "FLEET_AUTO_BLOCKED",
    "FLEET_AUTO_ELIGIBLE",
    "FLEET_AUTO_KILL_SWITCH",
    "FLEET_AUTO_PAUSED",
    "FLEET_AUTO_ROLLOUT_GATED",
    "FLEET_AUTO_SAFETY_BLOCKED",
    "GATING_REASONS",
    "HEALTH_CRITICAL",
    "HEALTH_DEGRADED",
    "HISTORY_CATEGORY",
    "INTENT_NOT_ALLOWLISTED",
    "KILL_SWITCH_ENABLED",
    "MAX_PER_LOOP_EXCEEDED",
    "MAX_PER_RUN_EXCEEDED",
    "MODES",
    "MODE_NOT_GUARDED_AUTO",
    "NO_ACTION_REQUIRED",
    "NO_RECOMMENDED_INTENT",
    "RECOMMENDED_INTENT",
    "RECONCILE_FAILED",
    "REGISTRY_SUPPRESSION",
    "SAFETY_REASONS",
    "SCOPE_COOLDOWN",
    "SCOPE_GLOBAL",
    "SCOPE_LOOP",
    "SEVERITY_BELOW_THRESHOLD",
    "SEVERITY_RANK",
    "SOURCE_COOLDOWN",
    "SOURCE_GLOBAL",
    "SOURCE_LOOP",
    "SUPPRESSION_PRECEDENCE",
    "TAXONOMY_VERSION",
    "TELEMETRY_CATEGORY",
    "AutonomousCooldown",
    "AutonomyControls",
    "CandidateAutonomy",
    "CandidateDecision",
    "CandidateSignal",
    "CategoryProfile",
    "DedupeWindow",
    "GateDecision",
    "HistoryIndex",
    "PolicyEvaluation",
    "PolicyFiles",
    "PolicyInputs",
    "RailInput",
    "Suppression",
    "apply_safety_rails",
    "autonomous_cooldown",
    "autonomous_eligible_candidates",
    "candidate_autonomy",
    "decide_candidates",
    "dedupe_window",
    "evaluate_policy",
    "gate_candidate",
    "generate_candidates",
    "index_history",
    "manual_only_candidates",
    "policy_mode",
    "policy_reason_codes",
    "registry_suppression",
    "safety_rail",
    "taxonomy_json",
    "unsuppressed_candidates",
]
