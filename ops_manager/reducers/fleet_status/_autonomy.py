"""Fleet status sections fed by the policy and handoff states: policy, autonomous (PURE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ops_manager.reducers._fleet_json import as_number, dig, integral, unique_sorted
from ops_manager.reducers.fleet_governance import GUARDED_AUTO, governance_posture
from ops_manager.reducers.fleet_handoff import (
    outcome_rollup,
    status_autonomous_handoff,
    status_handoff_section,
    status_latest_handoff_telemetry,
    transport_gate_reason_counts,
)
from ops_manager.reducers.fleet_policy import (
    autonomous_eligible_candidates,
    manual_only_candidates,
    unsuppressed_candidates,
)
from ops_manager.reducers.fleet_status._contract import (
    ADVISORY,
    BLOCKED_COUNT_REASONS,
    POLICY_GATE_REASONS,
    ROLLOUT_GATE_REASONS,
    SEVERITY_ORDER,
    SUPPRESSION_CODES,
    TOP_CANDIDATES,
    SectionBuilder,
    count_or,
    default_if_none,
    drop_nulls,
)

# --- policy, handoff and autonomy (fed by policy-state.json / handoff-state.json) ----------


def _candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``P.candidates // []``, keeping only objects."""
    candidates = policy_state.get("candidates")
    if not isinstance(candidates, list):
        return []
    return [c for c in candidates if isinstance(c, Mapping)]


def policy_counts(policy_state: Mapping[str, Any]) -> dict[str, int]:
    """The policy's candidate counts as stored, else counted from its candidates.

    Keys: ``candidateCount``, ``unsuppressedCount``, ``suppressedCount``,
    ``autoEligibleCount``, ``manualOnlyCount``.
    """
    candidates = _candidates(policy_state)
    unsuppressed = len(unsuppressed_candidates(policy_state))
    counted = {
        "candidateCount": len(candidates),
        "unsuppressedCount": unsuppressed,
        "suppressedCount": len(candidates) - unsuppressed,
        "autoEligibleCount": len(autonomous_eligible_candidates(policy_state)),
        "manualOnlyCount": len(manual_only_candidates(policy_state)),
    }
    return {key: count_or(policy_state.get(key), fallback) for key, fallback in counted.items()}


def _severity_rank(candidate: Mapping[str, Any]) -> int:
    severity = candidate.get("severity")
    return SEVERITY_ORDER.get(severity, 2) if isinstance(severity, str) else 2


def top_candidates(policy_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first five candidates after a stable sort by severity (critical, warning, other).

    Suppressed candidates are included, as upstream (fleet.md §6.24).
    """
    ranked = sorted(_candidates(policy_state), key=_severity_rank)
    return [dict(c) for c in ranked[:TOP_CANDIDATES]]


def policy_section(policy_state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``policy``: mode, candidate counts, reason codes, top candidates, trace and time."""
    if policy_state is None:
        return None
    counts = policy_counts(policy_state)
    return drop_nulls(
        {
            "mode": default_if_none(policy_state.get("mode"), ADVISORY),
            "candidateCount": counts["candidateCount"],
            "unsuppressedCount": counts["unsuppressedCount"],
            "suppressedCount": counts["suppressedCount"],
            "reasonCodes": default_if_none(policy_state.get("reasonCodes"), []),
            "topCandidates": top_candidates(policy_state),
            "traceId": policy_state.get("traceId"),
            "updatedAt": policy_state.get("updatedAt"),
        }
    )


def autonomy_reason_counts(policy_state: Mapping[str, Any] | None) -> dict[str, Any]:
    """``PAR`` = ``P.summary.byAutonomyReason // {}`` (``{}`` when it is not an object)."""
    counts = dig(policy_state, "summary", "byAutonomyReason")
    return dict(counts) if isinstance(counts, Mapping) else {}


def _restrict(counts: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """``counts`` restricted to ``keys``, keeping ``counts``' order."""
    return {key: value for key, value in counts.items() if key in keys}


def _sum(values: Any) -> int | float:
    """Sum of the numbers among ``values`` (anything else counts 0)."""
    total: int | float = 0
    for value in values:
        number = as_number(value)
        if number is not None:
            total += number
    return integral(total)


def safety_gate_decisions(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    *,
    governance_reason_codes: Sequence[str] = (),
    governance_blocks: bool = False,
) -> dict[str, Any]:
    """``autonomous.safetyGateDecisions``: why candidates were kept from acting, by path.

    ``governance_reason_codes`` / ``governance_blocks`` come from the governance posture
    (:func:`ops_manager.reducers.fleet_governance.governance_posture`).
    """
    par = autonomy_reason_counts(policy_state)
    policy_gated = _restrict(par, POLICY_GATE_REASONS)
    rollout_gated = _restrict(par, ROLLOUT_GATE_REASONS)
    transport_gated = transport_gate_reason_counts(handoff_state)
    governance_blocked = (
        policy_counts(policy_state)["unsuppressedCount"]
        if policy_state is not None and governance_blocks
        else 0
    )
    by_path: dict[str, dict[str, Any]] = {
        "policyGated": {"blockedCount": _sum(policy_gated.values()), "byReason": policy_gated},
        "rolloutGated": {
            "blockedCount": _sum(rollout_gated.values()),
            "byReason": rollout_gated,
        },
        "governanceGated": {
            "blockedCount": governance_blocked,
            "reasonCodes": list(governance_reason_codes),
        },
        "transportGated": {
            "blockedCount": _sum(transport_gated.values()),
            "byReason": transport_gated,
        },
    }
    suppression = unique_sorted(
        SUPPRESSION_CODES[path] for path, entry in by_path.items() if entry["blockedCount"] > 0
    )
    return {
        "byReason": par,
        "byPath": by_path,
        "suppressionReasonCodes": suppression,
        "blockedCount": _sum(_restrict(par, BLOCKED_COUNT_REASONS).values()),
        "killSwitchActive": dig(policy_state, "autonomous", "controls", "safety", "killSwitch")
        is True,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _autopause_view(auto: Mapping[str, Any]) -> dict[str, Any]:
    """The eight keys of ``rollout.autopause`` / ``rollout.pause.auto`` (nulls kept)."""
    return {
        "enabled": default_if_none(auto.get("enabled"), True),
        "active": default_if_none(auto.get("active"), False),
        "reasons": default_if_none(auto.get("reasons"), []),
        "lookbackExecutions": auto.get("lookbackExecutions"),
        "minSampleSize": auto.get("minSampleSize"),
        "ambiguityRateThreshold": auto.get("ambiguityRateThreshold"),
        "failureRateThreshold": auto.get("failureRateThreshold"),
        "metrics": default_if_none(auto.get("metrics"), {}),
    }


def rollout_view(policy_state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``autonomous.rollout`` from ``P.autonomous.rollout``: cohort settings, candidate
    buckets, pause state (manual and auto) and the auto-pause settings and metrics."""
    if policy_state is None:
        return None
    rollout = _mapping(dig(policy_state, "autonomous", "rollout"))
    buckets = _mapping(rollout.get("candidateBuckets"))
    pause = _mapping(rollout.get("pause"))
    auto = _mapping(pause.get("auto"))
    autopause = _autopause_view(auto)
    return drop_nulls(
        {
            "canaryPercent": rollout.get("canaryPercent"),
            "scopeLoopIds": default_if_none(rollout.get("scopeLoopIds"), []),
            "selectorSalt": rollout.get("selectorSalt"),
            "candidateBuckets": {
                key: default_if_none(buckets.get(key), 0)
                for key in ("inScopeCount", "inCohortCount", "outOfCohortCount")
            },
            "state": {
                "active": default_if_none(pause.get("active"), False),
                "manualPauseActive": default_if_none(pause.get("manual"), False),
                "autoPauseActive": autopause["active"],
                "reasonCodes": default_if_none(pause.get("reasons"), []),
            },
            "autopause": autopause,
            "pause": {
                "active": default_if_none(pause.get("active"), False),
                "reasons": default_if_none(pause.get("reasons"), []),
                "manual": default_if_none(pause.get("manual"), False),
                "auto": dict(autopause),
            },
        }
    )


def autonomous_section(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    *,
    now: int,
) -> dict[str, Any] | None:
    """``autonomous``: mode, eligibility counts, outcome rollup, governance posture at
    ``now`` (epoch seconds), safety-gate decisions, rollout and handoff outcomes.

    ``None`` only when there is neither a policy state nor a handoff state.
    """
    if policy_state is None and handoff_state is None:
        return None
    mode = default_if_none(
        dig(policy_state if policy_state is not None else handoff_state, "mode"), ADVISORY
    )
    counts = policy_counts(policy_state) if policy_state is not None else None
    posture = governance_posture(policy_state, now)
    reasons = posture.reason_codes if posture is not None else ()
    return drop_nulls(
        {
            "mode": mode,
            "enabled": mode == GUARDED_AUTO,
            "policyReasonCodes": default_if_none(dig(policy_state, "reasonCodes"), []),
            "handoffReasonCodes": default_if_none(dig(handoff_state, "reasonCodes"), []),
            "eligibleCandidateCount": counts["autoEligibleCount"] if counts else 0,
            "manualOnlyCandidateCount": counts["manualOnlyCount"] if counts else 0,
            "outcomeRollup": outcome_rollup(handoff_state, policy_state),
            "governance": posture.status_view() if posture is not None else None,
            "safetyGateDecisions": safety_gate_decisions(
                policy_state,
                handoff_state,
                governance_reason_codes=reasons,
                governance_blocks=posture is not None and posture.blocks_autonomous,
            ),
            "rollout": rollout_view(policy_state),
            "handoff": status_autonomous_handoff(handoff_state, policy_state),
        }
    )


def autonomy_sections(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    latest_handoff_telemetry: Mapping[str, Any] | None,
    *,
    now: int,
) -> SectionBuilder:
    """The builder of ``policy``, ``handoff``, ``autonomous``, ``latestHandoffTelemetry`` and
    ``traceLinkage.policyTraceId`` (each ``null`` when its artifact is absent)."""

    def build(_doc: Mapping[str, Any]) -> dict[str, Any]:
        rollup = outcome_rollup(handoff_state, policy_state)
        return {
            "policy": policy_section(policy_state),
            "handoff": status_handoff_section(handoff_state, policy_state),
            "autonomous": autonomous_section(policy_state, handoff_state, now=now),
            "traceLinkage": {"policyTraceId": dig(policy_state, "traceId")},
            "latestHandoffTelemetry": status_latest_handoff_telemetry(
                latest_handoff_telemetry, rollup
            ),
        }

    return build
