"""Execution: target selection, control calls and folding results back into the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.reducers.fleet_handoff._attempts import (
    attempt_key,
    fold_attempts,
)
from ops_manager.reducers.fleet_handoff._common import (
    INTENT_STATUS_FOR_RESULT,
    MODE_AUTONOMOUS,
    PENDING,
    as_object,
    get_path,
    or_default,
)
from ops_manager.reducers.fleet_handoff._plan import (
    reason_codes,
    summarize,
)

# --- execution ----------------------------------------------------------------------------


def execution_eligibility(intent: Mapping[str, Any], mode: str) -> str | None:
    """Why ``intent`` is NOT in the ``mode`` execution pool (``None``: it is).

    ``intent_not_pending`` (already executed / failed / ambiguous in this plan), or for the
    autonomous pool ``autonomous_intent_not_eligible`` (see its ``autonomous.reasons``).
    """
    if intent.get("status") != PENDING:
        return "intent_not_pending"
    if mode == MODE_AUTONOMOUS and get_path(intent, "autonomous", "eligible") is not True:
        return "autonomous_intent_not_eligible"
    return None


@attrs.frozen
class TargetSelection:
    """The intents to execute, or the filter values that match nothing in the pool."""

    targets: list[dict[str, Any]]
    pool: list[dict[str, Any]]
    missing_loops: list[str]
    missing_intents: list[str]


def select_targets(
    intents: Sequence[dict[str, Any]],
    mode: str,
    loops: Sequence[str] = (),
    intent_ids: Sequence[str] = (),
) -> TargetSelection:
    """Pool (by :func:`execution_eligibility`), then ``--loop`` and ``--intent-id`` filters.

    Every filter value must name something in the pool (DECISIONS 6.6): the ones that do not
    are returned so the shell can fail with the contract's message. Order is plan order.
    """
    pool = [i for i in intents if execution_eligibility(i, mode) is None]
    pool_loops = {i.get("loopId") for i in pool}
    pool_ids = {i.get("intentId") for i in pool}
    missing_loops = [v for v in dict.fromkeys(loops) if v not in pool_loops]
    missing_intents = [v for v in dict.fromkeys(intent_ids) if v not in pool_ids]
    targets = list(pool)
    if loops:
        wanted = set(loops)
        targets = [i for i in targets if i.get("loopId") in wanted]
    if intent_ids:
        wanted_ids = set(intent_ids)
        targets = [i for i in targets if i.get("intentId") in wanted_ids]
    return TargetSelection(
        targets=targets, pool=pool, missing_loops=missing_loops, missing_intents=missing_intents
    )


@attrs.frozen
class ControlCall:
    """One control invocation the shell must make (or a failure decided without a call)."""

    intent: dict[str, Any]
    loop_id: str
    control_intent: str
    transport: str
    trace_id: str
    idempotency_key: str
    note: str
    service_base_url: str | None
    token_env: str | None
    retry_attempts: int
    retry_backoff_seconds: int
    #: registry ``service.timeoutSeconds`` (``None`` = the service client's defaults)
    timeout_seconds: float | None = None
    #: set when no call must be made:
    #: ``autonomous_intent_not_eligible`` / ``missing_service_base_url``
    precheck_failure: str | None = None


def _int_setting(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _timeout_setting(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return float(value)


def plan_control_call(
    intent: dict[str, Any],
    *,
    mode: str,
    trace_id: str,
    prefix: str,
    note: str | None,
    attempts: Mapping[str, Any],
) -> ControlCall:
    """Decide the control call for one target (§2.5 step 4)."""
    intent_id = str(intent.get("intentId"))
    loop_id = str(intent.get("loopId"))
    control_intent = str(intent.get("intent"))
    suffix = f"fleet_handoff:{mode}:{intent_id}"
    effective_note = f"{note} | {suffix}" if note else suffix
    base = intent.get("idempotencyKey")
    base_key = base if isinstance(base, str) and base else f"{prefix}-{loop_id}-{control_intent}"
    entry = attempts.get(intent_id)
    key = attempt_key(base_key, entry if isinstance(entry, dict) else None, mode)
    transport = str(or_default(intent.get("transport"), "local"))
    service = as_object(intent.get("service"))
    base_url = service.get("baseUrl") if isinstance(service.get("baseUrl"), str) else None
    token_env = service.get("tokenEnv") if isinstance(service.get("tokenEnv"), str) else None
    failure: str | None = None
    if mode == MODE_AUTONOMOUS and get_path(intent, "autonomous", "eligible") is not True:
        failure = "autonomous_intent_not_eligible"
    elif transport == "sprite_service" and not base_url:
        failure = "missing_service_base_url"
    return ControlCall(
        intent=intent,
        loop_id=loop_id,
        control_intent=control_intent,
        transport=transport,
        trace_id=trace_id,
        idempotency_key=key,
        note=effective_note,
        service_base_url=base_url or None,
        token_env=token_env or None,
        retry_attempts=_int_setting(service.get("retryAttempts"), 3),
        retry_backoff_seconds=_int_setting(service.get("retryBackoffSeconds"), 1),
        timeout_seconds=_timeout_setting(service.get("timeoutSeconds")),
        precheck_failure=failure,
    )


def outcome_for_exit(exit_code: int) -> tuple[str, str]:
    """Control exit code -> ``(result status, reasonCode)``."""
    if exit_code == 0:
        return "executed", "control_confirmed"
    if exit_code == 2:
        return "ambiguous", "control_ambiguous"
    return "failed", "control_failed_command"


def execution_result(
    call: ControlCall,
    *,
    mode: str,
    requested_by: str,
    executed_at: str,
    exit_code: int,
    control: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One ``execution.results[]`` row (§2.5 key order; drop-nulls; ``autonomousEligible``
    kept when false). A pre-check failure is ``failed`` with its reason and exit code 1."""
    if call.precheck_failure is not None:
        status, reason = "failed", call.precheck_failure
        exit_code = 1
    else:
        status, reason = outcome_for_exit(exit_code)
    return strip_nulls(
        {
            "intentId": call.intent.get("intentId"),
            "loopId": call.loop_id,
            "intent": call.control_intent,
            "traceId": call.trace_id,
            "idempotencyKey": call.idempotency_key,
            "requestedBy": requested_by,
            "executedAt": executed_at,
            "status": status,
            "reasonCode": reason,
            "executionMode": mode,
            "autonomousEligible": get_path(call.intent, "autonomous", "eligible") is True,
            "controlExitCode": exit_code,
            "control": dict(control) if control is not None else None,
        }
    )


def _intent_execution(result: Mapping[str, Any]) -> dict[str, Any]:
    control = as_object(result.get("control"))
    return strip_nulls(
        {
            "mode": result.get("executionMode"),
            "executedAt": result.get("executedAt"),
            "requestedBy": result.get("requestedBy"),
            "status": result.get("status"),
            "reasonCode": result.get("reasonCode"),
            "traceId": result.get("traceId"),
            "idempotencyKey": result.get("idempotencyKey"),
            "autonomousEligible": result.get("autonomousEligible"),
            "controlExitCode": result.get("controlExitCode"),
            "controlStatus": control.get("status"),
            "confirmed": control.get("confirmed"),
        }
    )


def apply_execution(
    plan: Mapping[str, Any],
    *,
    mode: str,
    requested_by: str,
    requested_at: str,
    completed_at: str,
    note: str | None,
    requested_count: int,
    results: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The new state: statuses replaced, ``execution`` appended last, summary, reason codes
    and the ``intentAttempts`` ledger recomputed (§2.5 step 5)."""
    by_id = {r.get("intentId"): r for r in results}
    intents: list[dict[str, Any]] = []
    for intent in plan["intents"]:
        result = by_id.get(intent.get("intentId"))
        if result is None:
            intents.append(intent)
            continue
        updated = dict(intent)
        updated["status"] = INTENT_STATUS_FOR_RESULT[str(result["status"])]
        updated["execution"] = _intent_execution(result)
        intents.append(updated)
    prior_summary = as_object(plan.get("summary"))
    summary = summarize(
        intents,
        or_default(prior_summary.get("candidateCount"), 0),
        or_default(prior_summary.get("unsuppressedCandidateCount"), 0),
    )

    def count(status: str) -> int:
        return sum(1 for r in results if r.get("status") == status)

    execution = {
        "mode": mode,
        "requestedBy": requested_by,
        "requestedAt": requested_at,
        "completedAt": completed_at,
        "note": note,
        "requestedIntentCount": requested_count,
        "executedIntentCount": len(results),
        "executedCount": count("executed"),
        "ambiguousCount": count("ambiguous"),
        "failedCount": count("failed"),
        "results": [dict(r) for r in results],
    }
    state = dict(plan)
    state["updatedAt"] = completed_at
    state["intents"] = intents
    state["summary"] = summary
    state["reasonCodes"] = reason_codes(summary, intents)
    ledger = as_object(plan.get("intentAttempts"))
    state["intentAttempts"] = fold_attempts(ledger, results)
    state["execution"] = execution
    return state


def execute_telemetry_row(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fleet_handoff_execute`` row of ``handoff.jsonl``."""
    execution = state["execution"]
    return {
        "timestamp": execution["completedAt"],
        "category": "fleet_handoff_execute",
        "fleetId": state["fleetId"],
        "traceId": state["traceId"],
        "execution": execution,
        "summary": {"summary": state["summary"], "reasonCodes": state["reasonCodes"]},
    }
