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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ops_manager._jsonfmt import strip_nulls
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.reducers._fleet_json import (
    bool_or,
    count_into,
    dig,
    int_or,
    str_list,
    unique_sorted,
)
from ops_manager.reducers.fleet_governance import (
    GUARDED_AUTO,
    AuditDecision,
    GovernanceSnapshot,
    audit_row,
    decide_audit_event,
    policy_governance_block,
)
from ops_manager.reducers.fleet_rollout import (
    CANARY_EXCLUDED,
    PAUSED_AUTO,
    PAUSED_MANUAL,
    SCOPE_EXCLUDED,
    PauseDecision,
    RolloutDecision,
    RolloutSettings,
    evaluate_pause,
    evaluate_rollout,
    idle_pause_json,
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


# --- 2. suppression -------------------------------------------------------------------------


@attrs.frozen
class Suppression:
    """Why a candidate is suppressed (scope, reason code, the setting responsible)."""

    scope: str
    reason: str
    source: str


def registry_suppression(loop_id: str, category: str, suppressions: Any) -> Suppression | None:
    """§3.4: the loop's own list wins over ``*``; ``None`` when neither lists the category."""
    table = suppressions if isinstance(suppressions, Mapping) else {}
    if category in str_list(table.get(loop_id)):
        return Suppression(SCOPE_LOOP, REGISTRY_SUPPRESSION, SOURCE_LOOP)
    if category in str_list(table.get("*")):
        return Suppression(SCOPE_GLOBAL, REGISTRY_SUPPRESSION, SOURCE_GLOBAL)
    return None


COOLDOWN_SUPPRESSION_DECISION = Suppression(SCOPE_COOLDOWN, COOLDOWN_SUPPRESSION, SOURCE_COOLDOWN)


# --- 3. dedupe / history ----------------------------------------------------------------------


@attrs.frozen
class HistoryIndex:
    """What the policy history says per candidate: last unsuppressed / last eligible epoch.

    A fold of ``policy-history.jsonl``; the shell keeps it (with the stream position it
    reflects) so each run only folds the rows appended since the previous one.
    """

    last_unsuppressed: Mapping[str, int] = attrs.field(factory=dict)
    last_eligible: Mapping[str, int] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"lastUnsuppressed": {id: epoch}, "lastEligible": {id: epoch}}``."""
        return {
            "lastUnsuppressed": dict(self.last_unsuppressed),
            "lastEligible": dict(self.last_eligible),
        }

    @classmethod
    def from_json(cls, value: Any) -> HistoryIndex | None:
        """Read :meth:`to_json` output back; ``None`` if it is malformed."""
        maps = []
        for key in ("lastUnsuppressed", "lastEligible"):
            table = dig(value, key)
            if not isinstance(table, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                for k, v in table.items()
            ):
                return None
            maps.append(dict(table))
        return cls(last_unsuppressed=maps[0], last_eligible=maps[1])


def index_history(
    rows: Iterable[Mapping[str, Any]], start: HistoryIndex | None = None
) -> HistoryIndex:
    """Fold policy-history rows into a :class:`HistoryIndex` (one pass, O(candidates) memory).

    ``start`` is the index of the rows before these (incremental fold). Rows lacking
    ``suppressed`` count as unsuppressed; rows whose ``timestamp`` does not parse are skipped
    (fleet.md §6.4).
    """
    unsuppressed: dict[str, int] = dict(start.last_unsuppressed) if start else {}
    eligible: dict[str, int] = dict(start.last_eligible) if start else {}
    for row in rows:
        candidate_id = row.get("candidateId")
        if not isinstance(candidate_id, str):
            continue
        epoch = parse_ts(row.get("timestamp"))
        if epoch is None:
            continue
        if row.get("suppressed") in (None, False) and epoch > unsuppressed.get(candidate_id, -1):
            unsuppressed[candidate_id] = epoch
        if row.get("autonomousEligible") is True and epoch > eligible.get(candidate_id, -1):
            eligible[candidate_id] = epoch
    return HistoryIndex(last_unsuppressed=unsuppressed, last_eligible=eligible)


@attrs.frozen
class DedupeWindow:
    """The advisory dedupe window for one candidate (the candidate's ``cooldown`` object)."""

    window_seconds: int
    active: bool = False
    remaining_seconds: int = 0
    last_unsuppressed_at: int | None = None

    @property
    def enabled(self) -> bool:
        """A window of 0 disables dedupe."""
        return self.window_seconds > 0

    def to_json(self) -> dict[str, Any]:
        """Contract key order."""
        last = self.last_unsuppressed_at
        return {
            "enabled": self.enabled,
            "windowSeconds": self.window_seconds,
            "active": self.active,
            "remainingSeconds": self.remaining_seconds,
            "lastUnsuppressedAt": None if last is None else format_ts(last),
        }


def dedupe_window(candidate_id: str, history: HistoryIndex, now: int, window: int) -> DedupeWindow:
    """§3.5: active while ``now - lastUnsuppressed < window``."""
    if window <= 0:
        return DedupeWindow(window_seconds=window)
    last = history.last_unsuppressed.get(candidate_id)
    if last is None:
        return DedupeWindow(window_seconds=window)
    age = now - last
    active = age < window
    return DedupeWindow(
        window_seconds=window,
        active=active,
        remaining_seconds=window - age if active else 0,
        last_unsuppressed_at=last,
    )


@attrs.frozen
class AutonomousCooldown:
    """Per-candidate autonomous cooldown, anchored on the last eligible history row (§3.6)."""

    active: bool = False
    remaining_seconds: int = 0
    last_eligible_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``safety.cooldown`` object."""
        last = self.last_eligible_at
        return {
            "active": self.active,
            "remainingSeconds": self.remaining_seconds,
            "lastEligibleAt": None if last is None else format_ts(last),
        }


def autonomous_cooldown(
    candidate_id: str, history: HistoryIndex, now: int, cooldown_seconds: int
) -> AutonomousCooldown:
    """Active while ``cooldownSeconds > 0`` and ``now - lastEligible < cooldownSeconds``."""
    last = history.last_eligible.get(candidate_id)
    if last is None:
        return AutonomousCooldown()
    age = now - last
    active = cooldown_seconds > 0 and age < cooldown_seconds
    return AutonomousCooldown(
        active=active,
        remaining_seconds=cooldown_seconds - age if active else 0,
        last_eligible_at=last,
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


# --- the whole policy run -----------------------------------------------------------------------


@attrs.frozen
class PolicyFiles:
    """Artifact paths as they are echoed into the policy state and rows (verbatim strings)."""

    registry_file: str
    fleet_state_file: str
    policy_state_file: str
    governance_audit_file: str
    handoff_telemetry_file: str
    policy_telemetry_file: str
    policy_history_file: str


@attrs.frozen
class PolicyInputs:
    """Everything one policy run reads, already parsed by the shell."""

    registry: Mapping[str, Any]
    fleet_state: Mapping[str, Any]
    history: HistoryIndex
    handoff_rows: Sequence[Mapping[str, Any]]
    previous_state: Mapping[str, Any] | None
    now: int
    trace_id: str
    dedupe_window_seconds: int
    files: PolicyFiles
    #: last row of the governance audit stream (crash recovery, see fleet_governance)
    last_audit_row: Mapping[str, Any] | None = None


@attrs.frozen
class PolicyEvaluation:
    """The outcome of a policy run: the projection and the records to append."""

    state: dict[str, Any]
    candidates: list[CandidateDecision]
    history_rows: list[dict[str, Any]]
    telemetry_row: dict[str, Any]
    audit: AuditDecision
    audit_rows: list[dict[str, Any]]


def policy_mode(registry: Mapping[str, Any]) -> str:
    """The normalised ``policy.mode`` (``advisory`` when absent)."""
    mode = dig(registry, "policy", "mode")
    return mode if isinstance(mode, str) else ADVISORY


def policy_reason_codes(
    decisions: Sequence[CandidateDecision],
    mode: str,
    by_autonomy_reason: Mapping[str, int],
    auto_pause_active: bool,
) -> list[str]:
    """§4.2 policy-state ``reasonCodes`` (sorted)."""
    unsuppressed = sum(1 for d in decisions if not d.suppressed)
    eligible = sum(1 for d in decisions if not d.suppressed and d.eligible)
    suppression_reasons = {d.suppression.reason for d in decisions if d.suppression}
    codes = [FLEET_ACTION_REQUIRED if unsuppressed > 0 else NO_ACTION_REQUIRED]
    if len(decisions) > unsuppressed:
        codes.append(FLEET_ACTIONS_SUPPRESSED)
    if REGISTRY_SUPPRESSION in suppression_reasons:
        codes.append(FLEET_ACTIONS_POLICY_SUPPRESSED)
    if COOLDOWN_SUPPRESSION in suppression_reasons:
        codes.append(FLEET_ACTIONS_DEDUPED)
    if mode == GUARDED_AUTO:
        if eligible > 0:
            codes.append(FLEET_AUTO_ELIGIBLE)
        if unsuppressed > 0 and eligible == 0:
            codes.append(FLEET_AUTO_BLOCKED)
        if {SCOPE_EXCLUDED, CANARY_EXCLUDED} & by_autonomy_reason.keys():
            codes.append(FLEET_AUTO_ROLLOUT_GATED)
        if {PAUSED_MANUAL, PAUSED_AUTO} & by_autonomy_reason.keys():
            codes.append(FLEET_AUTO_PAUSED)
        if auto_pause_active:
            codes.append(FLEET_AUTO_AUTOPAUSE_TRIGGERED)
        if KILL_SWITCH_ENABLED in by_autonomy_reason:
            codes.append(FLEET_AUTO_KILL_SWITCH)
        if set(SAFETY_REASONS[1:]) & by_autonomy_reason.keys():
            codes.append(FLEET_AUTO_SAFETY_BLOCKED)
    return unique_sorted(codes)


def _summary(decisions: Sequence[CandidateDecision]) -> dict[str, Any]:
    by_severity = {"critical": 0, "warning": 0, "info": 0}
    by_confidence = {"high": 0, "medium": 0, "low": 0}
    by_category: dict[str, int] = {}
    by_suppression: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for d in decisions:
        profile = d.signal.profile
        count_into(by_severity, profile.severity)
        count_into(by_confidence, profile.confidence)
        count_into(by_category, d.signal.category)
        if d.suppression is not None:
            count_into(by_suppression, d.suppression.reason)
        else:
            for reason in d.reasons:
                count_into(by_reason, reason)
    unsuppressed = [d for d in decisions if not d.suppressed]
    return {
        "bySeverity": by_severity,
        "byConfidence": by_confidence,
        "byCategory": by_category,
        "bySuppressionReason": by_suppression,
        "byAutonomy": {
            "eligible": sum(1 for d in unsuppressed if d.eligible),
            "manualOnly": sum(1 for d in unsuppressed if not d.eligible),
        },
        "byAutonomyReason": by_reason,
    }


def evaluate_policy(inputs: PolicyInputs) -> PolicyEvaluation:
    """One policy run: the new policy state, its history/telemetry/audit rows, all decisions.

    Raises ``ValueError`` for a mode outside :data:`MODES` (the shell reports it).
    """
    registry, fleet = inputs.registry, inputs.fleet_state
    mode = policy_mode(registry)
    if mode not in MODES:
        raise ValueError(f"unsupported policy mode: {mode}")
    controls_json = dig(registry, "policy", "autonomous")
    controls_json = controls_json if isinstance(controls_json, Mapping) else {}
    controls = AutonomyControls.from_json(controls_json)
    pause = evaluate_pause(controls.rollout, inputs.handoff_rows)
    results = fleet.get("results")
    decisions = decide_candidates(
        generate_candidates(results),
        mode=mode,
        suppressions=dig(registry, "policy", "suppressions"),
        controls=controls,
        pause=pause,
        history=inputs.history,
        now=inputs.now,
        dedupe_window_seconds=inputs.dedupe_window_seconds,
    )
    now_iso = format_ts(inputs.now)
    fleet_id = fleet.get("fleetId")
    fleet_id = "default" if fleet_id is None or fleet_id is False else fleet_id
    fleet_status = fleet.get("status")
    files = inputs.files
    candidates_json = [d.to_json() for d in decisions]
    summary = _summary(decisions)
    unsuppressed = [d for d in decisions if not d.suppressed]
    rollout = controls.rollout
    pause_json = (
        candidates_json[0]["autonomous"]["rollout"]["pause"]
        if candidates_json
        else idle_pause_json(rollout)
    )
    registry_suppressions = dig(registry, "policy", "suppressions")
    autonomous = {
        "enabled": mode == GUARDED_AUTO,
        "governanceAuditFile": files.governance_audit_file,
        "governance": policy_governance_block(controls_json.get("governance"), mode),
        "controls": dict(controls_json),
        "rollout": {
            "canaryPercent": rollout.canary_percent,
            "scopeLoopIds": list(rollout.scope_loop_ids),
            "selectorSalt": rollout.salt,
            "candidateBuckets": {
                "inScopeCount": sum(1 for d in decisions if d.gate.rollout.selection.in_scope),
                "inCohortCount": sum(1 for d in decisions if d.gate.rollout.selection.in_cohort),
                "outOfCohortCount": sum(
                    1
                    for d in decisions
                    if d.gate.rollout.selection.in_scope and not d.gate.rollout.selection.in_cohort
                ),
            },
            "pause": pause_json,
        },
    }
    noise_controls = {
        "dedupeWindowSeconds": inputs.dedupe_window_seconds,
        "policyHistoryFile": files.policy_history_file,
        "handoffTelemetryFile": files.handoff_telemetry_file,
    }
    reason_codes = policy_reason_codes(
        decisions, mode, summary["byAutonomyReason"], bool(decisions) and pause.auto.active
    )
    counts = {
        "candidateCount": len(decisions),
        "unsuppressedCount": len(unsuppressed),
        "suppressedCount": len(decisions) - len(unsuppressed),
        "cooldownSuppressedCount": sum(
            1 for d in decisions if d.suppression and d.suppression.reason == COOLDOWN_SUPPRESSION
        ),
        "autoEligibleCount": summary["byAutonomy"]["eligible"],
        "manualOnlyCount": summary["byAutonomy"]["manualOnly"],
    }
    state: dict[str, Any] = {
        "schemaVersion": "v1",
        "updatedAt": now_iso,
        "fleetId": fleet_id,
        "traceId": inputs.trace_id,
        "mode": mode,
        "fleetStatus": "unknown" if fleet_status is None or fleet_status is False else fleet_status,
        "source": {"fleetStateFile": files.fleet_state_file, "registryFile": files.registry_file},
        "taxonomy": taxonomy_json(),
        "noiseControls": noise_controls,
        "autonomous": autonomous,
        "evaluatedLoopCount": len(results) if isinstance(results, list) else 0,
        **counts,
        "candidates": candidates_json,
        "summary": summary,
        "suppressionState": {
            "suppressions": {} if registry_suppressions is None else registry_suppressions,
            "precedence": list(SUPPRESSION_PRECEDENCE),
            "allowedCategories": list(CATEGORIES),
        },
        "reasonCodes": reason_codes,
    }
    history_rows = [
        d.history_row(timestamp=now_iso, fleet_id=fleet_id, trace_id=inputs.trace_id)
        for d in decisions
    ]
    telemetry_row = {
        "timestamp": now_iso,
        "category": TELEMETRY_CATEGORY,
        "fleetId": fleet_id,
        "traceId": inputs.trace_id,
        "mode": mode,
        "summary": {
            **counts,
            "reasonCodes": reason_codes,
            "summary": summary,
            "noiseControls": noise_controls,
            "autonomous": autonomous,
        },
    }
    previous = GovernanceSnapshot.of_state(inputs.previous_state)
    current = GovernanceSnapshot(
        mode=mode, controls=autonomous["controls"], governance=autonomous["governance"]
    )
    audit = decide_audit_event(previous, current, inputs.last_audit_row)
    audit_rows = []
    if audit.event_type is not None:
        audit_rows.append(
            audit_row(
                audit.event_type,
                timestamp=now_iso,
                fleet_id=fleet_id,
                trace_id=inputs.trace_id,
                previous=previous,
                current=current,
                source={
                    "registryFile": files.registry_file,
                    "policyStateFile": files.policy_state_file,
                    "governanceAuditFile": files.governance_audit_file,
                },
            )
        )
    return PolicyEvaluation(
        state=state,
        candidates=decisions,
        history_rows=history_rows,
        telemetry_row=telemetry_row,
        audit=audit,
        audit_rows=audit_rows,
    )


# --- readers for the handoff / status helpers ---------------------------------------------------


@attrs.frozen
class CandidateAutonomy:
    """A policy-state candidate's autonomy verdict, read leniently (hand-written states)."""

    candidate_id: str | None
    loop_id: str | None
    eligible: bool
    manual_only: bool
    reasons: tuple[str, ...]


def candidate_autonomy(candidate: Mapping[str, Any]) -> CandidateAutonomy:
    """Read ``autonomous.{eligible,manualOnly,reasons}`` with the handoff defaults (§2.5).

    ``eligible`` is ``true`` only when literally ``true``; ``manualOnly`` is the stored boolean
    when there is one, else ``not eligible``; ``reasons`` default to ``[]``.
    """
    autonomous = candidate.get("autonomous")
    eligible = dig(autonomous, "eligible") is True
    manual = dig(autonomous, "manualOnly")
    candidate_id = candidate.get("candidateId")
    loop_id = candidate.get("loopId")
    return CandidateAutonomy(
        candidate_id=candidate_id if isinstance(candidate_id, str) else None,
        loop_id=loop_id if isinstance(loop_id, str) else None,
        eligible=eligible,
        manual_only=manual if isinstance(manual, bool) else not eligible,
        reasons=tuple(str_list(dig(autonomous, "reasons"))),
    )


def unsuppressed_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``candidates`` whose ``suppressed`` is absent or ``false`` (what handoff maps)."""
    candidates = policy_state.get("candidates")
    return [
        c
        for c in (candidates if isinstance(candidates, list) else [])
        if isinstance(c, Mapping) and c.get("suppressed") in (None, False)
    ]


def autonomous_eligible_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Unsuppressed candidates the policy marked autonomous-eligible, in policy order."""
    return [c for c in unsuppressed_candidates(policy_state) if candidate_autonomy(c).eligible]


def manual_only_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Unsuppressed candidates that need an operator, in policy order."""
    return [c for c in unsuppressed_candidates(policy_state) if candidate_autonomy(c).manual_only]
