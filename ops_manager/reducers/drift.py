"""Profile drift (``loop.md`` §3.7): does the applied threshold profile keep disagreeing
with the telemetry's recommendation?

Pure: the previous drift projection (``profile-drift.json``, or ``{}``) and this
evaluation's inputs go in; the new drift object and its history row come out. A mismatch
counts only when the recommendation is confident enough; ``mismatchStreak`` counts
consecutive eligible mismatches and resets on anything else; drift is active once the streak
reaches ``requiredStreak``.

The edges are explicit: ``transitioned.toActive`` (drift just became active: reconcile
appends a ``profile_drift_detected`` escalation) and ``transitioned.toResolved`` (it just
cleared: the history row carries it and ``profile-drift.json`` has ``driftActive: false``;
alert dispatch reads that to close the drift episode with a resolve).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from ops_manager.model._json import alt, strip_nulls
from ops_manager.model._time import format_ts
from ops_manager.model.errors import OpsError

#: confidence level -> rank
RANKS: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
CONFIDENCES: tuple[str, ...] = ("low", "medium", "high")

#: history row category and the reason code of an active drift (§5.6)
CATEGORY = "profile_drift_evaluation"
REASON_CODE = "profile_drift_detected"

#: drift statuses (§5.6)
NO_RECOMMENDATION = "no_recommendation"
ALIGNED = "aligned"
INSUFFICIENT_CONFIDENCE = "insufficient_confidence"
MISMATCH_PENDING = "mismatch_pending"
DRIFT_ACTIVE = "drift_active"

#: status -> action (statuses without an action have none)
ACTIONS: dict[str, str] = {
    DRIFT_ACTIVE: "review_threshold_profile",
    MISMATCH_PENDING: "monitor_additional_windows",
    INSUFFICIENT_CONFIDENCE: "collect_more_confident_telemetry",
}


@attrs.frozen
class DriftInputs:
    """One evaluation's inputs (already validated; empty strings mean "none")."""

    loop_id: str
    now: int
    applied_profile: str = ""
    recommended_profile: str = ""
    recommendation_confidence: str = "low"
    min_confidence: str = "medium"
    required_streak: int = 3
    summary_window: int = 200
    rationale: str = ""


def previous_streak(previous: Mapping[str, Any]) -> tuple[int, bool]:
    """``(mismatchStreak, driftActive)`` of the previous projection.

    ``mismatchStreak // 0`` with a non-integer (or negative) value counting as 0;
    ``driftActive`` only when it is literally ``true``.
    """
    raw = previous.get("mismatchStreak")
    streak = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 0
    return streak, previous.get("driftActive") is True


def drift_status(
    *, recommended: str, mismatch: bool, confidence_ok: bool, drift_active: bool
) -> str:
    """The first matching status rule of §3.7."""
    if recommended == "":
        return NO_RECOMMENDATION
    if not mismatch:
        return ALIGNED
    if not confidence_ok:
        return INSUFFICIENT_CONFIDENCE
    if drift_active:
        return DRIFT_ACTIVE
    return MISMATCH_PENDING


def evaluate_drift(previous: Mapping[str, Any], inp: DriftInputs) -> dict[str, Any]:
    """The new drift object (**[strip]**, key order of §3.7).

    ``previous`` is the stored ``profile-drift.json`` (``{}`` when there is none). An
    unknown confidence level ranks 0 (the shell validates levels before calling).
    """
    prev_streak, prev_active = previous_streak(previous)
    rec_rank = RANKS.get(inp.recommendation_confidence, 0)
    min_rank = RANKS.get(inp.min_confidence, 0)
    confidence_ok = rec_rank >= min_rank
    applied, recommended = inp.applied_profile or "", inp.recommended_profile or ""
    mismatch = applied != "" and recommended != "" and applied != recommended
    eligible = mismatch and confidence_ok
    streak = prev_streak + 1 if eligible else 0
    active = streak >= inp.required_streak
    status = drift_status(
        recommended=recommended, mismatch=mismatch, confidence_ok=confidence_ok, drift_active=active
    )
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "updatedAt": format_ts(inp.now),
            "loopId": inp.loop_id,
            "status": status,
            "reasonCode": REASON_CODE if status == DRIFT_ACTIVE else None,
            "appliedProfile": applied or None,
            "recommendedProfile": recommended or None,
            "recommendationConfidence": inp.recommendation_confidence,
            "minimumConfidence": inp.min_confidence,
            "recommendationRank": rec_rank,
            "minimumRank": min_rank,
            "requiredStreak": inp.required_streak,
            "summaryWindow": inp.summary_window,
            "mismatch": mismatch,
            "confidenceOk": confidence_ok,
            "eligibleMismatch": eligible,
            "mismatchStreak": streak,
            "driftActive": active,
            "transitioned": {
                "toActive": active and not prev_active,
                "toResolved": prev_active and not active,
            },
            "rationale": inp.rationale or None,
            "action": ACTIONS.get(status),
        }
    )


def drift_history_row(drift: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The ``TEL/profile-drift.jsonl`` row: ``{timestamp, loopId, category, drift}``.

    Its ``drift`` member is exactly the projection, so ``profile-drift.json`` can always be
    rebuilt from the last history row.
    """
    return {
        "timestamp": format_ts(now),
        "loopId": drift.get("loopId"),
        "category": CATEGORY,
        "drift": dict(drift),
    }


def transitioned_to_active(drift: Mapping[str, Any] | None) -> bool:
    """Whether this evaluation raised drift (the escalation edge)."""
    transitioned = drift.get("transitioned") if drift else None
    return isinstance(transitioned, dict) and transitioned.get("toActive") is True


def transitioned_to_resolved(drift: Mapping[str, Any] | None) -> bool:
    """Whether this evaluation cleared an active drift (the resolve edge)."""
    transitioned = drift.get("transitioned") if drift else None
    return isinstance(transitioned, dict) and transitioned.get("toResolved") is True


def state_drift(drift: Mapping[str, Any], trace_id: str | None) -> dict[str, Any]:
    """``state.drift``: the drift object plus a trailing ``traceId`` (§3.8.2 step 13)."""
    return {**drift, "traceId": trace_id or None}


def tuning_block(summary: Mapping[str, Any], applied_profile: object) -> dict[str, Any]:
    """``state.tuning`` (§3.8.2 step 13; key order exact, nulls kept)."""
    source = summary.get("source")
    return {
        "appliedProfile": alt(applied_profile),
        "recommendedProfile": alt(summary.get("recommendedProfile")),
        "confidence": alt(summary.get("confidence")),
        "rationale": alt(summary.get("rationale")),
        "summaryWindow": alt(source.get("window") if isinstance(source, dict) else None),
        "telemetrySummary": {
            "observed": alt(summary.get("observed"), {}),
            "source": alt(source, {}),
        },
    }


def check_known_profiles(known: Collection[str], applied: str, recommended: str) -> None:
    """Non-empty applied/recommended profiles must exist in the catalog (§3.7 validation).

    Raises ``unknown applied profile: <name>`` / ``unknown recommended profile: <name>``.
    """
    if applied and applied not in known:
        raise OpsError(f"unknown applied profile: {applied}")
    if recommended and recommended not in known:
        raise OpsError(f"unknown recommended profile: {recommended}")


__all__ = [
    "ACTIONS",
    "ALIGNED",
    "CATEGORY",
    "CONFIDENCES",
    "DRIFT_ACTIVE",
    "INSUFFICIENT_CONFIDENCE",
    "MISMATCH_PENDING",
    "NO_RECOMMENDATION",
    "RANKS",
    "REASON_CODE",
    "DriftInputs",
    "check_known_profiles",
    "drift_history_row",
    "drift_status",
    "evaluate_drift",
    "previous_streak",
    "state_drift",
    "transitioned_to_active",
    "transitioned_to_resolved",
    "tuning_block",
]
