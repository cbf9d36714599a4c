"""Policy taxonomy: modes, categories, reason codes, and candidate generation (§3.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ops_manager.reducers.fleet_governance import (
    GUARDED_AUTO,
)

ADVISORY = "advisory"
MODES = (ADVISORY, GUARDED_AUTO)
TAXONOMY_VERSION = "v1"
RECOMMENDED_INTENT = "cancel"

RECONCILE_FAILED = "reconcile_failed"
HEALTH_CRITICAL = "health_critical"
HEALTH_DEGRADED = "health_degraded"
CATEGORIES = (RECONCILE_FAILED, HEALTH_CRITICAL, HEALTH_DEGRADED)

SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}
CONFIDENCE_RANK = {"high": 3, "medium": 2, "low": 1}

# suppression
SCOPE_LOOP = "loop"
SCOPE_GLOBAL = "global"
SCOPE_COOLDOWN = "cooldown"
SUPPRESSION_PRECEDENCE = (SCOPE_LOOP, SCOPE_GLOBAL, SCOPE_COOLDOWN)
REGISTRY_SUPPRESSION = "registry_policy_suppression"
COOLDOWN_SUPPRESSION = "advisory_cooldown_active"
SOURCE_LOOP = "policy.suppressions.<loopId>"  # literal placeholder, as upstream (§6.20)
SOURCE_GLOBAL = "policy.suppressions.*"
SOURCE_COOLDOWN = "policy.noiseControls.dedupeWindowSeconds"

# gating reasons (§3.6)
MODE_NOT_GUARDED_AUTO = "policy_mode_not_guarded_auto"
CANDIDATE_SUPPRESSED = "candidate_suppressed"
CATEGORY_NOT_ALLOWLISTED = "category_not_allowlisted"
NO_RECOMMENDED_INTENT = "no_recommended_intent"
INTENT_NOT_ALLOWLISTED = "intent_not_allowlisted"
SEVERITY_BELOW_THRESHOLD = "severity_below_threshold"
CONFIDENCE_BELOW_THRESHOLD = "confidence_below_threshold"
GATING_REASONS = (
    MODE_NOT_GUARDED_AUTO,
    CANDIDATE_SUPPRESSED,
    CATEGORY_NOT_ALLOWLISTED,
    NO_RECOMMENDED_INTENT,
    INTENT_NOT_ALLOWLISTED,
    SEVERITY_BELOW_THRESHOLD,
    CONFIDENCE_BELOW_THRESHOLD,
)

# safety rails (§3.9), in precedence order
KILL_SWITCH_ENABLED = "autonomous_kill_switch_enabled"
AUTONOMOUS_COOLDOWN_ACTIVE = "autonomous_cooldown_active"
MAX_PER_RUN_EXCEEDED = "autonomous_max_actions_per_run_exceeded"
MAX_PER_LOOP_EXCEEDED = "autonomous_max_actions_per_loop_exceeded"
SAFETY_REASONS = (
    KILL_SWITCH_ENABLED,
    AUTONOMOUS_COOLDOWN_ACTIVE,
    MAX_PER_RUN_EXCEEDED,
    MAX_PER_LOOP_EXCEEDED,
)

# policy-state reason codes (§4.2)
FLEET_ACTION_REQUIRED = "fleet_action_required"
NO_ACTION_REQUIRED = "no_action_required"
FLEET_ACTIONS_SUPPRESSED = "fleet_actions_suppressed"
FLEET_ACTIONS_POLICY_SUPPRESSED = "fleet_actions_policy_suppressed"
FLEET_ACTIONS_DEDUPED = "fleet_actions_deduped"
FLEET_AUTO_ELIGIBLE = "fleet_auto_candidates_eligible"
FLEET_AUTO_BLOCKED = "fleet_auto_candidates_blocked"
FLEET_AUTO_ROLLOUT_GATED = "fleet_auto_candidates_rollout_gated"
FLEET_AUTO_PAUSED = "fleet_auto_candidates_paused"
FLEET_AUTO_AUTOPAUSE_TRIGGERED = "fleet_auto_candidates_autopause_triggered"
FLEET_AUTO_KILL_SWITCH = "fleet_auto_kill_switch_enabled"
FLEET_AUTO_SAFETY_BLOCKED = "fleet_auto_candidates_safety_blocked"

HISTORY_CATEGORY = "fleet_policy_candidate"
TELEMETRY_CATEGORY = "fleet_policy"


@attrs.frozen
class CategoryProfile:
    """What a category means: the signal that raises it and how sure we are."""

    category: str
    signal: str
    severity: str
    confidence: str
    rationale: str


CATEGORY_PROFILES: dict[str, CategoryProfile] = {
    RECONCILE_FAILED: CategoryProfile(
        RECONCILE_FAILED,
        "status_failed",
        "critical",
        "high",
        "Loop reconcile failed in fleet fan-out",
    ),
    HEALTH_CRITICAL: CategoryProfile(
        HEALTH_CRITICAL, "health_critical", "critical", "high", "Loop health is critical"
    ),
    HEALTH_DEGRADED: CategoryProfile(
        HEALTH_DEGRADED, "health_degraded", "warning", "medium", "Loop health is degraded"
    ),
}


def taxonomy_json() -> dict[str, Any]:
    """The ``taxonomy`` block of the policy state."""
    return {
        "version": TAXONOMY_VERSION,
        "categories": [
            {"category": p.category, "severity": p.severity, "confidence": p.confidence}
            for p in CATEGORY_PROFILES.values()
        ],
    }


# --- 1. candidates --------------------------------------------------------------------------


@attrs.frozen
class CandidateSignal:
    """One raised candidate before any decision (§3.3)."""

    loop_id: str
    category: str
    trace_id: Any = None

    @property
    def candidate_id(self) -> str:
        """``<loopId>:<category>``."""
        return f"{self.loop_id}:{self.category}"

    @property
    def profile(self) -> CategoryProfile:
        """The category's severity/confidence/rationale."""
        return CATEGORY_PROFILES[self.category]


def generate_candidates(results: Any) -> list[CandidateSignal]:
    """Candidates from fleet-state ``results`` (non-objects and loop-id-less rows skipped)."""
    seen: set[str] = set()
    found: list[CandidateSignal] = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, Mapping):
            continue
        loop_id = result.get("loopId")
        if not isinstance(loop_id, str) or loop_id == "":
            continue
        categories = []
        if result.get("status") == "failed":
            categories.append(RECONCILE_FAILED)
        health = result.get("healthStatus")
        if health == "critical":
            categories.append(HEALTH_CRITICAL)
        elif health == "degraded":
            categories.append(HEALTH_DEGRADED)
        for category in categories:
            signal = CandidateSignal(loop_id, category, result.get("traceId"))
            if signal.candidate_id not in seen:
                seen.add(signal.candidate_id)
                found.append(signal)
    return sorted(found, key=lambda c: (c.loop_id, c.category))
