"""Autonomous gating, safety rails and the per-candidate decision (§3.6, §3.9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.reducers._fleet_json import (
    bool_or,
    dig,
    int_or,
    str_list,
    unique_sorted,
)
from ops_manager.reducers.fleet_governance import (
    GUARDED_AUTO,
)
from ops_manager.reducers.fleet_policy._history import (
    COOLDOWN_SUPPRESSION_DECISION,
    AutonomousCooldown,
    DedupeWindow,
    HistoryIndex,
    Suppression,
    autonomous_cooldown,
    dedupe_window,
    registry_suppression,
)
from ops_manager.reducers.fleet_policy._taxonomy import (
    AUTONOMOUS_COOLDOWN_ACTIVE,
    CANDIDATE_SUPPRESSED,
    CATEGORY_NOT_ALLOWLISTED,
    CONFIDENCE_BELOW_THRESHOLD,
    CONFIDENCE_RANK,
    HISTORY_CATEGORY,
    INTENT_NOT_ALLOWLISTED,
    KILL_SWITCH_ENABLED,
    MAX_PER_LOOP_EXCEEDED,
    MAX_PER_RUN_EXCEEDED,
    MODE_NOT_GUARDED_AUTO,
    NO_RECOMMENDED_INTENT,
    RECOMMENDED_INTENT,
    SEVERITY_BELOW_THRESHOLD,
    SEVERITY_RANK,
    TAXONOMY_VERSION,
    CandidateSignal,
)
from ops_manager.reducers.fleet_rollout import (
    PauseDecision,
    RolloutDecision,
    RolloutSettings,
    evaluate_rollout,
)

# --- 4. gating --------------------------------------------------------------------------------


@attrs.frozen
class AutonomyControls:
    """The normalised ``policy.autonomous`` block with defaults applied (§3.6)."""

    allowed_categories: tuple[str, ...] = ()
    allowed_intents: tuple[str, ...] = ()
    min_severity: str = "critical"
    min_confidence: str = "high"
    max_actions_per_run: int = 1
    max_actions_per_loop: int = 1
    cooldown_seconds: int = 300
    kill_switch: bool = False
    rollout: RolloutSettings = attrs.field(factory=RolloutSettings)

    @classmethod
    def from_json(cls, controls: Any) -> AutonomyControls:
        """Read a normalised ``policy.autonomous`` object (missing keys -> defaults)."""
        min_severity = dig(controls, "thresholds", "minSeverity")
        min_confidence = dig(controls, "thresholds", "minConfidence")
        return cls(
            allowed_categories=tuple(str_list(dig(controls, "allow", "categories"))),
            allowed_intents=tuple(str_list(dig(controls, "allow", "intents"))),
            min_severity=min_severity if isinstance(min_severity, str) else "critical",
            min_confidence=min_confidence if isinstance(min_confidence, str) else "high",
            max_actions_per_run=int_or(dig(controls, "safety", "maxActionsPerRun"), 1),
            max_actions_per_loop=int_or(dig(controls, "safety", "maxActionsPerLoop"), 1),
            cooldown_seconds=int_or(dig(controls, "safety", "cooldownSeconds"), 300),
            kill_switch=bool_or(dig(controls, "safety", "killSwitch"), False),
            rollout=RolloutSettings.from_controls(controls),
        )


@attrs.frozen
class GateDecision:
    """Every pre-safety gate for one candidate and the reasons the failing ones give."""

    mode_guarded_auto: bool
    suppressed: bool
    category_allowed: bool
    intent_allowed: bool
    has_recommended_intent: bool
    severity_meets_threshold: bool
    confidence_meets_threshold: bool
    rollout: RolloutDecision

    @property
    def base_reasons(self) -> list[str]:
        """Mode, suppression, allowlist and threshold reasons."""
        reasons = []
        if not self.mode_guarded_auto:
            reasons.append(MODE_NOT_GUARDED_AUTO)
        if self.suppressed:
            reasons.append(CANDIDATE_SUPPRESSED)
        if not self.category_allowed:
            reasons.append(CATEGORY_NOT_ALLOWLISTED)
        if not self.has_recommended_intent:
            reasons.append(NO_RECOMMENDED_INTENT)
        elif not self.intent_allowed:
            reasons.append(INTENT_NOT_ALLOWLISTED)
        if not self.severity_meets_threshold:
            reasons.append(SEVERITY_BELOW_THRESHOLD)
        if not self.confidence_meets_threshold:
            reasons.append(CONFIDENCE_BELOW_THRESHOLD)
        return reasons

    @property
    def reasons(self) -> list[str]:
        """``gatingReasons``: base + rollout reasons, sorted."""
        return unique_sorted([*self.base_reasons, *self.rollout.reasons])

    def gates_json(self) -> dict[str, bool]:
        """The candidate's ``autonomous.gates`` object."""
        return {
            "modeGuardedAuto": self.mode_guarded_auto,
            "suppressed": self.suppressed,
            "categoryAllowed": self.category_allowed,
            "intentAllowed": self.intent_allowed,
            "severityMeetsThreshold": self.severity_meets_threshold,
            "confidenceMeetsThreshold": self.confidence_meets_threshold,
            "rolloutScopeAllowed": self.rollout.selection.in_scope,
            "rolloutCanarySelected": self.rollout.selection.canary_selected,
        }


def gate_candidate(
    *,
    mode: str,
    loop_id: str,
    category: str,
    severity: str,
    confidence: str,
    recommended_intent: str | None,
    suppressed: bool,
    controls: AutonomyControls,
    pause: PauseDecision,
) -> GateDecision:
    """§3.6 for one candidate (computed in every mode)."""
    return GateDecision(
        mode_guarded_auto=mode == GUARDED_AUTO,
        suppressed=suppressed,
        category_allowed=category in controls.allowed_categories,
        intent_allowed=recommended_intent is not None
        and recommended_intent in controls.allowed_intents,
        has_recommended_intent=recommended_intent is not None,
        severity_meets_threshold=SEVERITY_RANK.get(severity, 0)
        >= SEVERITY_RANK.get(controls.min_severity, 0),
        confidence_meets_threshold=CONFIDENCE_RANK.get(confidence, 0)
        >= CONFIDENCE_RANK.get(controls.min_confidence, 0),
        rollout=evaluate_rollout(loop_id, controls.rollout, pause),
    )


# --- 5. safety rails --------------------------------------------------------------------------


def safety_rail(
    *,
    gating_reasons: Sequence[str],
    mode: str,
    kill_switch: bool,
    cooldown_active: bool,
    selected_total: int,
    selected_for_loop: int,
    max_actions_per_run: int,
    max_actions_per_loop: int,
) -> str | None:
    """§3.9: the one safety reason blocking an otherwise-eligible candidate, or ``None``.

    Order: kill switch > autonomous cooldown > per-run cap > per-loop cap. Candidates that are
    already gated get no safety reason (they are not eligible anyway and use no cap).
    """
    if gating_reasons or mode != GUARDED_AUTO:
        return None
    if kill_switch:
        return KILL_SWITCH_ENABLED
    if cooldown_active:
        return AUTONOMOUS_COOLDOWN_ACTIVE
    if selected_total >= max_actions_per_run:
        return MAX_PER_RUN_EXCEEDED
    if selected_for_loop >= max_actions_per_loop:
        return MAX_PER_LOOP_EXCEEDED
    return None


@attrs.frozen
class RailInput:
    """What the safety rails need to know about one gated candidate."""

    loop_id: str
    gating_reasons: tuple[str, ...]
    cooldown_active: bool


def apply_safety_rails(
    candidates: Sequence[RailInput], mode: str, controls: AutonomyControls
) -> list[str | None]:
    """Run :func:`safety_rail` over candidates in order, counting eligible selections."""
    selected_total = 0
    selected_by_loop: dict[str, int] = {}
    decisions: list[str | None] = []
    for item in candidates:
        reason = safety_rail(
            gating_reasons=item.gating_reasons,
            mode=mode,
            kill_switch=controls.kill_switch,
            cooldown_active=item.cooldown_active,
            selected_total=selected_total,
            selected_for_loop=selected_by_loop.get(item.loop_id, 0),
            max_actions_per_run=controls.max_actions_per_run,
            max_actions_per_loop=controls.max_actions_per_loop,
        )
        decisions.append(reason)
        if not item.gating_reasons and reason is None:
            selected_total += 1
            selected_by_loop[item.loop_id] = selected_by_loop.get(item.loop_id, 0) + 1
    return decisions


# --- one candidate, all decisions -------------------------------------------------------------


@attrs.frozen
class CandidateDecision:
    """Everything decided about one candidate, with the reasons."""

    signal: CandidateSignal
    suppression: Suppression | None
    dedupe: DedupeWindow
    gate: GateDecision
    cooldown: AutonomousCooldown
    safety_reason: str | None
    mode: str
    controls: AutonomyControls

    @property
    def suppressed(self) -> bool:
        """Registry- or cooldown-suppressed."""
        return self.suppression is not None

    @property
    def reasons(self) -> list[str]:
        """Final autonomous reasons: gating + safety, sorted. Empty means eligible."""
        extra = [] if self.safety_reason is None else [self.safety_reason]
        return unique_sorted([*self.gate.reasons, *extra])

    @property
    def eligible(self) -> bool:
        """Autonomous-eligible: no reason at all."""
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        """The candidate object of ``policy-state.json`` (contract key order)."""
        s, profile, sup = self.signal, self.signal.profile, self.suppression
        reasons = self.reasons
        controls = self.controls
        return {
            "loopId": s.loop_id,
            "category": s.category,
            "signal": profile.signal,
            "traceId": s.trace_id,
            "candidateId": s.candidate_id,
            "severity": profile.severity,
            "confidence": profile.confidence,
            "rationale": profile.rationale,
            "taxonomyVersion": TAXONOMY_VERSION,
            "recommendedIntent": RECOMMENDED_INTENT,
            "suppressionScope": sup.scope if sup else None,
            "suppressed": self.suppressed,
            "suppressionReason": sup.reason if sup else None,
            "suppressionSource": sup.source if sup else None,
            "cooldown": self.dedupe.to_json(),
            "autonomous": {
                "mode": self.mode,
                "eligible": not reasons,
                "manualOnly": bool(reasons),
                "reasons": reasons,
                "gatingReasons": self.gate.reasons,
                "recommendedIntent": RECOMMENDED_INTENT,
                "gates": self.gate.gates_json(),
                "safety": {
                    "maxActionsPerRun": controls.max_actions_per_run,
                    "maxActionsPerLoop": controls.max_actions_per_loop,
                    "cooldownSeconds": controls.cooldown_seconds,
                    "killSwitch": controls.kill_switch,
                    "cooldown": self.cooldown.to_json(),
                    "killSwitchActive": self.mode == GUARDED_AUTO and controls.kill_switch,
                    "runCapBlocked": MAX_PER_RUN_EXCEEDED in reasons,
                    "loopCapBlocked": MAX_PER_LOOP_EXCEEDED in reasons,
                },
                "rollout": self.gate.rollout.to_json(),
            },
        }

    def history_row(self, *, timestamp: str, fleet_id: str, trace_id: str) -> dict[str, Any]:
        """The ``policy-history.jsonl`` row (drop-nulls; ``false`` booleans are kept)."""
        sup, rollout = self.suppression, self.gate.rollout
        reasons = self.reasons
        return strip_nulls(
            {
                "timestamp": timestamp,
                "category": HISTORY_CATEGORY,
                "fleetId": fleet_id,
                "traceId": trace_id,
                "mode": self.mode,
                "candidateId": self.signal.candidate_id,
                "loopId": self.signal.loop_id,
                "candidateCategory": self.signal.category,
                "severity": self.signal.profile.severity,
                "confidence": self.signal.profile.confidence,
                "recommendedIntent": RECOMMENDED_INTENT,
                "suppressed": self.suppressed,
                "suppressionReason": sup.reason if sup else None,
                "suppressionScope": sup.scope if sup else None,
                "suppressionSource": sup.source if sup else None,
                "autonomousEligible": not reasons,
                "autonomousManualOnly": bool(reasons),
                "autonomousReasons": reasons,
                "autonomousRolloutInScope": rollout.selection.in_scope,
                "autonomousRolloutInCohort": rollout.selection.in_cohort,
                "autonomousRolloutBucket": rollout.selection.bucket,
                "autonomousRolloutPauseActive": rollout.pause.active,
                "autonomousRolloutPauseReasons": rollout.pause.reasons,
                "autonomousAutoPauseActive": rollout.pause.auto.active,
                "autonomousAutoPauseReasons": list(rollout.pause.auto.reasons),
            }
        )


def decide_candidates(
    signals: Sequence[CandidateSignal],
    *,
    mode: str,
    suppressions: Any,
    controls: AutonomyControls,
    pause: PauseDecision,
    history: HistoryIndex,
    now: int,
    dedupe_window_seconds: int,
) -> list[CandidateDecision]:
    """Suppression -> dedupe -> gating -> safety rails for candidates in final order."""
    staged = []
    for signal in signals:
        suppression = registry_suppression(signal.loop_id, signal.category, suppressions)
        dedupe = dedupe_window(signal.candidate_id, history, now, dedupe_window_seconds)
        if suppression is None and dedupe.active:
            suppression = COOLDOWN_SUPPRESSION_DECISION
        profile = signal.profile
        gate = gate_candidate(
            mode=mode,
            loop_id=signal.loop_id,
            category=signal.category,
            severity=profile.severity,
            confidence=profile.confidence,
            recommended_intent=RECOMMENDED_INTENT,
            suppressed=suppression is not None,
            controls=controls,
            pause=pause,
        )
        cooldown = autonomous_cooldown(signal.candidate_id, history, now, controls.cooldown_seconds)
        staged.append((signal, suppression, dedupe, gate, cooldown))
    rails = apply_safety_rails(
        [RailInput(s.loop_id, tuple(g.reasons), c.active) for s, _, _, g, c in staged],
        mode,
        controls,
    )
    return [
        CandidateDecision(
            signal=signal,
            suppression=suppression,
            dedupe=dedupe,
            gate=gate,
            cooldown=cooldown,
            safety_reason=rail,
            mode=mode,
            controls=controls,
        )
        for (signal, suppression, dedupe, gate, cooldown), rail in zip(staged, rails, strict=True)
    ]
