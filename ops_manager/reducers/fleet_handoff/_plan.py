"""Building the handoff plan: intents, summary, reason codes and the plan telemetry row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.reducers.fleet_handoff._attempts import (
    live_rail_reasons,
    retry_guard,
)
from ops_manager.reducers.fleet_handoff._common import (
    DEFAULT_INTENT_CATEGORIES,
    EXECUTED,
    EXECUTION_AMBIGUOUS,
    EXECUTION_FAILED,
    GUARD_PREFIX,
    PENDING,
    as_object,
    get_path,
    intent_idempotency_key,
    or_default,
    unique_sorted,
)

# --- plan ---------------------------------------------------------------------------------


@attrs.frozen
class PlanInputs:
    """Everything :func:`build_plan` needs (all data; no I/O)."""

    policy_state: Mapping[str, Any]
    registry: Mapping[str, Any]
    trace_id: str
    idempotency_prefix: str
    generated_at: str
    registry_file: str
    policy_state_file: str
    #: the ``intentAttempts`` ledger carried from the previous run
    attempts: Mapping[str, Any] = attrs.field(factory=dict)


def _loop_map(registry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    loops = registry.get("loops")
    out: dict[str, dict[str, Any]] = {}
    for loop in loops if isinstance(loops, list) else []:
        if isinstance(loop, dict) and isinstance(loop.get("loopId"), str):
            out.setdefault(loop["loopId"], loop)
    return out


def unsuppressed_candidates(policy_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Policy candidates with ``(suppressed // false) == false``."""
    found = policy_state.get("candidates")
    return [
        c
        for c in (found if isinstance(found, list) else [])
        if isinstance(c, dict) and or_default(c.get("suppressed"), False) is False
    ]


def mapped_intent(candidate: Mapping[str, Any]) -> str | None:
    """The control intent a candidate maps to, or ``None`` (unmapped)."""
    recommended = candidate.get("recommendedIntent")
    if recommended is not None and recommended is not False:
        return str(recommended)
    if candidate.get("category") in DEFAULT_INTENT_CATEGORIES:
        return "cancel"
    return None


def _sort_key(value: Any) -> tuple[int, str]:
    """jq ``sort_by`` key for a string-or-null field: null sorts first."""
    if value is None:
        return (0, "")
    return (1, value if isinstance(value, str) else str(value))


def build_intent(
    candidate: Mapping[str, Any],
    intent: str,
    *,
    loop: Mapping[str, Any],
    trace_id: str,
    policy_trace_id: str,
    prefix: str,
    guard: str | None,
    live_reasons: Sequence[str],
) -> dict[str, Any]:
    """One intent object, key order of §2.5, drop-nulls at this level."""
    loop_id = candidate.get("loopId")
    category = candidate.get("category")
    candidate_key = or_default(
        candidate.get("candidateId"), f"{loop_id}:{or_default(category, 'unknown')}"
    )
    auto = as_object(candidate.get("autonomous"))
    eligible = or_default(auto.get("eligible"), False) is True
    manual_only = True if auto.get("manualOnly") is True else not eligible
    reasons_raw = or_default(auto.get("reasons"), [])
    reasons = (
        [r for r in reasons_raw if isinstance(r, str)] if isinstance(reasons_raw, list) else []
    )
    extra: list[str] = []
    if guard is not None:
        extra.append(guard)
    if eligible and live_reasons:
        extra.extend(live_reasons)
    if extra:
        eligible = False
        manual_only = True
        reasons = unique_sorted([*reasons, *extra])
    service = as_object(loop.get("service"))
    category_text = category if isinstance(category, str) else None
    return strip_nulls(
        {
            "intentId": f"{candidate_key}:{intent}",
            "candidateId": candidate_key,
            "loopId": loop_id,
            "category": category,
            "severity": candidate.get("severity"),
            "confidence": candidate.get("confidence"),
            "rationale": candidate.get("rationale"),
            "signal": candidate.get("signal"),
            "intent": intent,
            "recommendedIntent": candidate.get("recommendedIntent"),
            "status": PENDING,
            "requiresOperatorConfirmation": True,
            "fleetTraceId": trace_id,
            "policyTraceId": policy_trace_id,
            "candidateTraceId": candidate.get("traceId"),
            "autonomous": {"eligible": eligible, "manualOnly": manual_only, "reasons": reasons},
            "idempotencyKey": intent_idempotency_key(
                prefix, trace_id, str(loop_id), category_text, intent
            ),
            "transport": or_default(loop.get("transport"), "local"),
            "service": strip_nulls(
                {
                    "baseUrl": service.get("baseUrl"),
                    "tokenEnv": service.get("tokenEnv"),
                    "retryAttempts": or_default(service.get("retryAttempts"), 3),
                    "retryBackoffSeconds": or_default(service.get("retryBackoffSeconds"), 1),
                    "timeoutSeconds": service.get("timeoutSeconds"),
                }
            ),
            "metadata": or_default(loop.get("metadata"), {}),
        }
    )


def build_intents(inputs: PlanInputs) -> tuple[list[dict[str, Any]], int]:
    """The sorted intents and the number of unsuppressed candidates."""
    policy = inputs.policy_state
    loops = _loop_map(inputs.registry)
    policy_trace_id = or_default(policy.get("traceId"), inputs.trace_id)
    live = live_rail_reasons(inputs.registry)
    candidates = unsuppressed_candidates(policy)
    intents: list[dict[str, Any]] = []
    for candidate in candidates:
        intent = mapped_intent(candidate)
        if intent is None:
            continue
        loop_id = candidate.get("loopId")
        loop = loops.get(loop_id, {}) if isinstance(loop_id, str) else {}
        candidate_key = or_default(
            candidate.get("candidateId"),
            f"{candidate.get('loopId')}:{or_default(candidate.get('category'), 'unknown')}",
        )
        intents.append(
            build_intent(
                candidate,
                intent,
                loop=loop,
                trace_id=inputs.trace_id,
                policy_trace_id=str(policy_trace_id),
                prefix=inputs.idempotency_prefix,
                guard=retry_guard(inputs.attempts, f"{candidate_key}:{intent}"),
                live_reasons=live,
            )
        )
    intents.sort(
        key=lambda i: (_sort_key(i.get("loopId")), _sort_key(i.get("category")), i["intent"])
    )
    return intents, len(candidates)


def summarize(
    intents: Sequence[Mapping[str, Any]], candidate_count: int, unsuppressed_count: int
) -> dict[str, Any]:
    """The plan/state ``summary`` (§2.5)."""

    def count(status: str) -> int:
        return sum(1 for i in intents if i.get("status") == status)

    return {
        "candidateCount": candidate_count,
        "unsuppressedCandidateCount": unsuppressed_count,
        "intentCount": len(intents),
        "autoEligibleIntentCount": sum(
            1 for i in intents if get_path(i, "autonomous", "eligible") is True
        ),
        "manualOnlyIntentCount": sum(
            1 for i in intents if get_path(i, "autonomous", "manualOnly") is True
        ),
        "pendingConfirmationCount": count(PENDING),
        "executedCount": count(EXECUTED),
        "ambiguousCount": count(EXECUTION_AMBIGUOUS),
        "failedCount": count(EXECUTION_FAILED),
    }


def reason_codes(summary: Mapping[str, Any], intents: Sequence[Mapping[str, Any]]) -> list[str]:
    """Handoff ``reasonCodes`` (§4.3), unique-sorted."""
    codes: list[str] = []
    intent_count = summary["intentCount"]
    unsuppressed = summary["unsuppressedCandidateCount"]
    codes.append("fleet_handoff_action_required" if intent_count > 0 else "fleet_handoff_no_action")
    if summary["pendingConfirmationCount"] > 0:
        codes.append("fleet_handoff_confirmation_pending")
    if intent_count < unsuppressed:
        codes.append("fleet_handoff_partial_mapping")
    if unsuppressed > 0 and intent_count == 0:
        codes.append("fleet_handoff_unmapped_candidates")
    if any(
        isinstance(r, str) and r.startswith(GUARD_PREFIX)
        for i in intents
        for r in (get_path(i, "autonomous", "reasons") or [])
    ):
        codes.append("fleet_handoff_retry_guarded")
    if summary["autoEligibleIntentCount"] > 0:
        codes.append("fleet_handoff_auto_eligible_intents")
    if summary["executedCount"] > 0:
        codes.append("fleet_handoff_executed")
    if summary["ambiguousCount"] > 0:
        codes.append("fleet_handoff_execution_ambiguous")
    if summary["failedCount"] > 0:
        codes.append("fleet_handoff_execution_failed")
    return unique_sorted(codes)


def build_plan(inputs: PlanInputs) -> dict[str, Any]:
    """The plan state (§2.5 key order) plus the carried ``intentAttempts`` ledger."""
    policy = inputs.policy_state
    intents, unsuppressed = build_intents(inputs)
    candidates = policy.get("candidates")
    summary = summarize(
        intents, len(candidates) if isinstance(candidates, list) else 0, unsuppressed
    )
    return {
        "schemaVersion": "v1",
        "generatedAt": inputs.generated_at,
        "updatedAt": inputs.generated_at,
        "fleetId": or_default(
            policy.get("fleetId"), or_default(inputs.registry.get("fleetId"), "default")
        ),
        "traceId": inputs.trace_id,
        "policyTraceId": or_default(policy.get("traceId"), inputs.trace_id),
        "mode": or_default(policy.get("mode"), "advisory"),
        "source": {
            "registryFile": inputs.registry_file,
            "policyStateFile": inputs.policy_state_file,
        },
        "control": {
            "idempotencyPrefix": inputs.idempotency_prefix,
            "requiresOperatorConfirmation": True,
        },
        "intents": intents,
        "summary": summary,
        "reasonCodes": reason_codes(summary, intents),
        "intentAttempts": dict(inputs.attempts),
    }


def plan_telemetry_row(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fleet_handoff_plan`` row of ``handoff.jsonl``."""
    return {
        "timestamp": plan["generatedAt"],
        "category": "fleet_handoff_plan",
        "fleetId": plan["fleetId"],
        "traceId": plan["traceId"],
        "mode": plan["mode"],
        "summary": {
            "summary": plan["summary"],
            "reasonCodes": plan["reasonCodes"],
            "policyTraceId": plan["policyTraceId"],
        },
    }
