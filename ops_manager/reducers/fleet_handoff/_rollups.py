"""Rollups and fleet-status sections fed by the handoff artifacts (§2.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ops_manager.reducers.fleet_handoff._common import (
    MODE_AUTONOMOUS,
    PENDING,
    as_object,
    get_path,
    or_default,
)

# --- rollups (fleet-status reads these; §2.4) -----------------------------------------------


def _count_into(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def pending_manual_only_count(handoff: Mapping[str, Any] | None) -> int:
    """#intents ``pending_operator_confirmation`` and ``autonomous.manualOnly``."""
    intents = get_path(handoff, "intents")
    return sum(
        1
        for i in (intents if isinstance(intents, list) else [])
        if isinstance(i, dict)
        and i.get("status") == PENDING
        and get_path(i, "autonomous", "manualOnly") is True
    )


def outcome_rollup(
    handoff: Mapping[str, Any] | None, policy: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``{attempted, executed, ambiguous, failed, manual_backlog}`` (§2.4 ``outcomeRollup``).

    The first four come from the last execution when it was autonomous (else 0);
    ``manual_backlog`` = pending manual-only intents when a handoff state exists, else the
    policy's ``manualOnlyCount``, else 0.
    """
    execution = get_path(handoff, "execution")
    execution = execution if isinstance(execution, dict) else {}
    autonomous = execution.get("mode") == MODE_AUTONOMOUS

    def pick(key: str) -> Any:
        return or_default(execution.get(key), 0) if autonomous else 0

    if handoff is not None:
        backlog: Any = pending_manual_only_count(handoff)
    elif policy is not None:
        backlog = or_default(policy.get("manualOnlyCount"), 0)
    else:
        backlog = 0
    return {
        "attempted": pick("requestedIntentCount"),
        "executed": pick("executedCount"),
        "ambiguous": pick("ambiguousCount"),
        "failed": pick("failedCount"),
        "manual_backlog": backlog,
    }


def result_reason_counts(handoff: Mapping[str, Any] | None) -> dict[str, int]:
    """``{reasonCode: n}`` over the last execution's results, in result order."""
    counts: dict[str, int] = {}
    results = get_path(handoff, "execution", "results")
    for r in results if isinstance(results, list) else []:
        if isinstance(r, dict) and isinstance(r.get("reasonCode"), str):
            _count_into(counts, r["reasonCode"])
    return counts


def intent_reason_counts(handoff: Mapping[str, Any] | None) -> dict[str, int]:
    """``{reason: n}`` over every intent's ``autonomous.reasons`` (all statuses; §6.24)."""
    counts: dict[str, int] = {}
    intents = get_path(handoff, "intents")
    for i in intents if isinstance(intents, list) else []:
        reasons = get_path(i, "autonomous", "reasons")
        for r in reasons if isinstance(reasons, list) else []:
            if isinstance(r, str):
                _count_into(counts, r)
    return counts


def transport_gate_reason_counts(handoff: Mapping[str, Any] | None) -> dict[str, int]:
    """``byPath.transportGated.byReason``: failed/ambiguous results of ``sprite_service``
    intents, by ``reasonCode`` (``transport_execution_blocked`` when it has none)."""
    transports: dict[Any, Any] = {}
    intents = get_path(handoff, "intents")
    for i in intents if isinstance(intents, list) else []:
        if isinstance(i, dict):
            transports.setdefault(i.get("intentId"), or_default(i.get("transport"), "local"))
    counts: dict[str, int] = {}
    results = get_path(handoff, "execution", "results")
    for r in results if isinstance(results, list) else []:
        if not isinstance(r, dict) or r.get("status") not in ("failed", "ambiguous"):
            continue
        if transports.get(r.get("intentId"), "local") != "sprite_service":
            continue
        reason = r.get("reasonCode")
        _count_into(counts, reason if isinstance(reason, str) else "transport_execution_blocked")
    return counts


def retry_guarded_intents(handoff: Mapping[str, Any] | None) -> dict[str, str]:
    """``{intentId: guard reason}`` of every intent the ledger still guards."""
    ledger = get_path(handoff, "intentAttempts")
    out: dict[str, str] = {}
    for intent_id, entry in ledger.items() if isinstance(ledger, dict) else []:
        guard = get_path(entry, "retryGuard")
        if isinstance(guard, str):
            out[intent_id] = guard
    return out


# --- fleet-status sections fed by the handoff artifacts (§2.4) --------------------------------


def _count_or_zero(obj: Any, key: str) -> Any:
    """jq ``.key // 0``."""
    return or_default(get_path(obj, key), 0)


def _drop_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


_SUMMARY_COUNTS = (
    "autoEligibleIntentCount",
    "manualOnlyIntentCount",
    "pendingConfirmationCount",
    "executedCount",
    "ambiguousCount",
    "failedCount",
)


def status_handoff_section(
    handoff: Mapping[str, Any] | None, policy: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """fleet-status ``handoff`` (§2.4): ``None`` without a handoff state, else drop-nulls of
    ``mode, reasonCodes, summary{..., autonomousOutcomeRollup}, execution{..., byReasonCode},
    byAutonomyReason, pendingManualOnlyCount, traceId, updatedAt``."""
    if handoff is None:
        return None
    summary = get_path(handoff, "summary")
    intents = get_path(handoff, "intents")
    execution = as_object(get_path(handoff, "execution"))
    rollup = outcome_rollup(handoff, policy)
    return _drop_nulls(
        {
            "mode": handoff.get("mode"),
            "reasonCodes": or_default(handoff.get("reasonCodes"), []),
            "summary": {
                "intentCount": or_default(
                    get_path(summary, "intentCount"),
                    len(intents) if isinstance(intents, list) else 0,
                ),
                **{key: _count_or_zero(summary, key) for key in _SUMMARY_COUNTS},
                "autonomousOutcomeRollup": rollup,
            },
            "execution": _drop_nulls(
                {
                    "mode": execution.get("mode"),
                    "requestedBy": execution.get("requestedBy"),
                    "requestedAt": execution.get("requestedAt"),
                    "completedAt": execution.get("completedAt"),
                    **{
                        key: _count_or_zero(execution, key)
                        for key in (
                            "requestedIntentCount",
                            "executedIntentCount",
                            "executedCount",
                            "ambiguousCount",
                            "failedCount",
                        )
                    },
                    "byReasonCode": result_reason_counts(handoff),
                }
            ),
            "byAutonomyReason": intent_reason_counts(handoff),
            "pendingManualOnlyCount": pending_manual_only_count(handoff),
            "traceId": handoff.get("traceId"),
            "updatedAt": handoff.get("updatedAt"),
        }
    )


def status_autonomous_handoff(
    handoff: Mapping[str, Any] | None, policy: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """fleet-status ``autonomous.handoff`` (§2.4): ``None`` without a handoff state."""
    if handoff is None:
        return None
    summary = get_path(handoff, "summary")
    execution = as_object(get_path(handoff, "execution"))
    return _drop_nulls(
        {
            "autoEligibleIntentCount": _count_or_zero(summary, "autoEligibleIntentCount"),
            "manualOnlyIntentCount": _count_or_zero(summary, "manualOnlyIntentCount"),
            "pendingManualOnlyCount": pending_manual_only_count(handoff),
            "executionMode": or_default(execution.get("mode"), None),
            "executedCount": _count_or_zero(execution, "executedCount"),
            "ambiguousCount": _count_or_zero(execution, "ambiguousCount"),
            "failedCount": _count_or_zero(execution, "failedCount"),
            "outcomeRollup": outcome_rollup(handoff, policy),
            "outcomeReasonCodes": result_reason_counts(handoff),
        }
    )


def status_latest_handoff_telemetry(
    row: Mapping[str, Any] | None, rollup: Mapping[str, Any]
) -> dict[str, Any] | None:
    """fleet-status ``latestHandoffTelemetry`` (§2.4) from the last ``handoff.jsonl`` row
    (``None`` when there is none); ``rollup`` is the status ``outcomeRollup`` (its
    ``manual_backlog`` is the fallback when the row carries no ``pendingManualOnlyCount``)."""
    if row is None:
        return None
    execution = as_object(row.get("execution"))
    summary = as_object(get_path(row, "summary", "summary"))
    autonomous = execution.get("mode") == MODE_AUTONOMOUS

    def pick(key: str) -> Any:
        return _count_or_zero(execution, key) if autonomous else 0

    pending = summary.get("pendingManualOnlyCount")
    return _drop_nulls(
        {
            "timestamp": row.get("timestamp"),
            "category": row.get("category"),
            "traceId": row.get("traceId"),
            "execution": _drop_nulls(
                {
                    key: execution.get(key)
                    for key in (
                        "mode",
                        "requestedIntentCount",
                        "executedCount",
                        "ambiguousCount",
                        "failedCount",
                    )
                }
            ),
            "summary": _drop_nulls(
                {
                    key: summary.get(key)
                    for key in (
                        "intentCount",
                        "autoEligibleIntentCount",
                        "manualOnlyIntentCount",
                        "pendingConfirmationCount",
                        "pendingManualOnlyCount",
                        "executedCount",
                        "ambiguousCount",
                        "failedCount",
                    )
                }
            ),
            "autonomousOutcomeRollup": {
                "attempted": pick("requestedIntentCount"),
                "executed": pick("executedCount"),
                "ambiguous": pick("ambiguousCount"),
                "failed": pick("failedCount"),
                "manual_backlog": pending if pending is not None else rollup.get("manual_backlog"),
            },
            "reasonCodes": or_default(get_path(row, "summary", "reasonCodes"), []),
        }
    )
