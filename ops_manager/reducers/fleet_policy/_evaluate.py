"""The whole policy run: :func:`evaluate_policy` and its inputs / outputs (§4.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._time import format_ts
from ops_manager.reducers._fleet_json import (
    count_into,
    dig,
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
from ops_manager.reducers.fleet_policy._gating import (
    AutonomyControls,
    CandidateDecision,
    decide_candidates,
)
from ops_manager.reducers.fleet_policy._history import (
    HistoryIndex,
)
from ops_manager.reducers.fleet_policy._taxonomy import (
    ADVISORY,
    CATEGORIES,
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
    KILL_SWITCH_ENABLED,
    MODES,
    NO_ACTION_REQUIRED,
    REGISTRY_SUPPRESSION,
    SAFETY_REASONS,
    SUPPRESSION_PRECEDENCE,
    TELEMETRY_CATEGORY,
    generate_candidates,
    taxonomy_json,
)
from ops_manager.reducers.fleet_rollout import (
    CANARY_EXCLUDED,
    PAUSED_AUTO,
    PAUSED_MANUAL,
    SCOPE_EXCLUDED,
    evaluate_pause,
    idle_pause_json,
)

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
