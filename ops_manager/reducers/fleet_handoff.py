"""Fleet handoff decisions (``fleet.md`` §2.5, §4.3): pure.

Policy candidates become control *intents*; a plan lists them; an execution picks targets,
derives one control call per target, and folds the outcomes back into the plan. Nothing here
reads files, the clock or the environment: the shell (:mod:`ops_manager.engine.fleet_handoff`)
passes timestamps, the prior handoff state and the registry in, and carries the returned
decisions out.

Decisions and their named reasons:

- **intent mapping** — an unsuppressed candidate maps to its ``recommendedIntent``, else to
  ``cancel`` for the three known categories, else it is *unmapped* (plan code
  ``fleet_handoff_partial_mapping`` / ``fleet_handoff_unmapped_candidates``);
- **autonomous classification** — copied from the policy candidate, then narrowed by
  (a) the *retry guard* (``autonomous_retry_guard_ambiguous`` / ``autonomous_retry_guard_failed``)
  and (b) the *live registry rails* (``policy_mode_not_guarded_auto``,
  ``autonomous_kill_switch_enabled``, ``autonomous_rollout_paused_manual``) when the registry
  changed after the policy state was written;
- **execution pool** — manual: every intent still ``pending_operator_confirmation``;
  autonomous: additionally ``autonomous.eligible`` (:func:`execution_eligibility` names the
  reason an intent is left out);
- **control call** — effective note, idempotency key (:func:`attempt_key`), transport
  settings; or a pre-call failure (``autonomous_intent_not_eligible``,
  ``missing_service_base_url``);
- **outcome** — control exit 0 / 2 / other -> ``executed`` / ``ambiguous`` / ``failed``
  (``control_confirmed`` / ``control_ambiguous`` / ``control_failed_command``).

Retry guard (DECISIONS 6.8: it persists until an operator confirms the guarded intent).
Upstream derived the guard from the previous ``handoff-state.json`` only, so it lasted one
cycle. Here the handoff state carries an ``intentAttempts`` ledger, a fold of every execution
result by ``intentId`` (:func:`fold_attempts`; rebuildable from ``handoff.jsonl``). An intent
whose last attempt was ``ambiguous`` or ``failed`` stays guarded — manual-only, out of every
autonomous pool — until a *manual* execution of it returns ``executed``.

Idempotency: the first attempt of an intent uses the intent's deterministic key
(``<prefix>-<trace>-<loop>-<category>-<intent>``), so re-running the same handoff (a crash, a
retry, a second operator) replays the stored control result instead of executing twice. An
operator confirming a guarded intent is a new decision: it gets the next key in the chain
(``<key>-retry-<n>``), itself deterministic, so a crash during the confirmation cannot
double-execute either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ops_manager._jsonfmt import alt, strip_nulls

PENDING = "pending_operator_confirmation"
EXECUTED = "executed"
EXECUTION_AMBIGUOUS = "execution_ambiguous"
EXECUTION_FAILED = "execution_failed"

#: known categories map to ``cancel`` when a candidate carries no ``recommendedIntent``
DEFAULT_INTENT_CATEGORIES = ("reconcile_failed", "health_critical", "health_degraded")

GUARD_AMBIGUOUS = "autonomous_retry_guard_ambiguous"
GUARD_FAILED = "autonomous_retry_guard_failed"
GUARD_PREFIX = "autonomous_retry_guard_"

#: execution result status -> the intent status it becomes
INTENT_STATUS_FOR_RESULT = {
    "executed": EXECUTED,
    "ambiguous": EXECUTION_AMBIGUOUS,
    "failed": EXECUTION_FAILED,
}
_RESULT_FOR_INTENT_STATUS = {v: k for k, v in INTENT_STATUS_FOR_RESULT.items()}
#: result status -> retry guard reason (an ``executed`` result clears nothing by itself)
GUARD_FOR_RESULT = {"ambiguous": GUARD_AMBIGUOUS, "failed": GUARD_FAILED}

MODE_MANUAL = "manual"
MODE_AUTONOMOUS = "autonomous"

_SLUG_BAD = re.compile(r"[^a-z0-9._-]")
_SLUG_RUNS = re.compile(r"-+")
_RETRY_SUFFIX = re.compile(r"^(.+)-retry-([0-9]+)$")


def _get(obj: Any, *keys: str) -> Any:
    """jq ``.a.b`` that yields ``None`` on a non-object instead of failing."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def _or(value: Any, default: Any) -> Any:
    """jq ``value // default``."""
    chosen = alt(value)
    return default if chosen is None else chosen


def unique_sorted(values: Iterable[str]) -> list[str]:
    """jq ``unique`` over strings: byte (code point) order, no duplicates."""
    return sorted(set(values))


def slug(text: str) -> str:
    """Lower-case ASCII, ``[^a-z0-9._-]`` -> ``-``, runs collapsed, one edge ``-`` stripped.

    ``Trace X/1`` -> ``trace-x-1``; ``reconcile_failed`` stays as it is.
    """
    lowered = "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in text)
    collapsed = _SLUG_RUNS.sub("-", _SLUG_BAD.sub("-", lowered))
    if collapsed.startswith("-"):
        collapsed = collapsed[1:]
    if collapsed.endswith("-"):
        collapsed = collapsed[:-1]
    return collapsed


def intent_idempotency_key(
    prefix: str, trace_id: str, loop_id: str, category: str | None, intent: str
) -> str:
    """The intent's deterministic key: non-empty slugs of the five parts joined by ``-``."""
    parts = (prefix, trace_id, loop_id, category if category is not None else "unknown", intent)
    return "-".join(s for s in (slug(p) for p in parts) if s)


# --- attempts ledger / retry guard ----------------------------------------------------------


def split_attempt_key(key: str) -> tuple[str, int]:
    """``(base key, attempt number)`` of a key used for an execution (``K`` -> ``(K, 1)``,
    ``K-retry-n`` -> ``(K, n + 1)``)."""
    match = _RETRY_SUFFIX.match(key)
    if match is None:
        return key, 1
    return match.group(1), int(match.group(2)) + 1


def fold_attempts(
    ledger: Mapping[str, Any], results: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Fold execution result rows into the ``intentAttempts`` ledger (pure, order-sensitive).

    Each entry is the last attempt of one ``intentId``: ``{baseKey, attempt, idempotencyKey,
    status, mode, executedAt, traceId, retryGuard?}``. ``retryGuard`` is present while the
    intent is guarded: the last attempt was ``ambiguous`` / ``failed``. A guard is only lifted
    by an ``executed`` result of a ``manual`` execution (an operator confirmed it); an
    autonomous ``executed`` result never lifts one (it cannot happen: guarded intents are not
    in the autonomous pool).
    """
    out: dict[str, Any] = {k: v for k, v in ledger.items() if isinstance(v, dict)}
    for row in results:
        intent_id = row.get("intentId")
        key = row.get("idempotencyKey")
        status = row.get("status")
        if not isinstance(intent_id, str):
            continue
        if not isinstance(key, str):
            key = ""
        if status not in INTENT_STATUS_FOR_RESULT:
            continue
        mode = row.get("executionMode")
        previous = out.get(intent_id)
        guard: str | None = GUARD_FOR_RESULT.get(str(status))
        if guard is None and mode != MODE_MANUAL and isinstance(previous, dict):
            kept = previous.get("retryGuard")
            guard = kept if isinstance(kept, str) else None
        base, attempt = split_attempt_key(key)
        out[intent_id] = strip_nulls(
            {
                "baseKey": base,
                "attempt": attempt,
                "idempotencyKey": key,
                "status": status,
                "mode": mode if isinstance(mode, str) else None,
                "executedAt": row.get("executedAt"),
                "traceId": row.get("traceId"),
                "retryGuard": guard,
            }
        )
    return out


def attempts_from_prior_state(prior: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ledger a previous ``handoff-state.json`` carries.

    A state written by this implementation has ``intentAttempts``. A state without it (upstream,
    or older) is read the upstream way: its intents' statuses and ``execution`` objects.
    """
    if not isinstance(prior, dict):
        return {}
    ledger = prior.get("intentAttempts")
    if isinstance(ledger, dict):
        return {k: v for k, v in ledger.items() if isinstance(v, dict)}
    rows: list[dict[str, Any]] = []
    intents = prior.get("intents")
    for intent in intents if isinstance(intents, list) else []:
        if not isinstance(intent, dict):
            continue
        status = intent.get("status")
        result_status = _RESULT_FOR_INTENT_STATUS.get(status) if isinstance(status, str) else None
        if result_status is None:
            continue
        execution = _obj(intent.get("execution"))
        rows.append(
            {
                "intentId": intent.get("intentId"),
                "idempotencyKey": _or(
                    execution.get("idempotencyKey"), intent.get("idempotencyKey")
                ),
                "status": result_status,
                "executionMode": _or(execution.get("mode"), MODE_AUTONOMOUS),
                "executedAt": execution.get("executedAt"),
                "traceId": execution.get("traceId"),
            }
        )
    return fold_attempts({}, rows)


def attempts_from_telemetry(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rebuild the ledger from ``handoff.jsonl`` (its ``fleet_handoff_execute`` rows)."""
    results: list[Mapping[str, Any]] = []
    for row in rows:
        if row.get("category") != "fleet_handoff_execute":
            continue
        found = _get(row, "execution", "results")
        if isinstance(found, list):
            results.extend(r for r in found if isinstance(r, dict))
    return fold_attempts({}, results)


def retry_guard(ledger: Mapping[str, Any], intent_id: str) -> str | None:
    """The guard reason holding ``intent_id``, or ``None``."""
    entry = ledger.get(intent_id)
    if not isinstance(entry, dict):
        return None
    guard = entry.get("retryGuard")
    return guard if isinstance(guard, str) else None


def attempt_key(base_key: str, entry: Mapping[str, Any] | None, mode: str) -> str:
    """The idempotency key for executing an intent whose deterministic key is ``base_key``.

    - no attempt under this base key yet -> ``base_key`` (first attempt);
    - the last attempt under it was ``executed`` -> that attempt's key again: control replays
      the stored result, nothing executes twice;
    - the last attempt under it is guarded (``ambiguous`` / ``failed``) and an operator
      confirms (``manual``) -> the next key in the chain, ``<base>-retry-<n>``;
    - otherwise (not reachable: guarded intents are not in the autonomous pool) -> the last
      key, which can only replay.
    """
    if not isinstance(entry, dict) or entry.get("baseKey") != base_key:
        return base_key
    last = entry.get("idempotencyKey")
    last_key = last if isinstance(last, str) and last else base_key
    attempt = entry.get("attempt")
    number = attempt if isinstance(attempt, int) and attempt >= 1 else 1
    if entry.get("status") != "executed" and mode == MODE_MANUAL:
        return f"{base_key}-retry-{number}"
    return last_key


# --- live registry rails ------------------------------------------------------------------


def live_rail_reasons(registry: Mapping[str, Any] | None) -> list[str]:
    """Reasons the *current* registry forbids autonomous execution (empty = allowed).

    The policy state can be older than the registry (an operator flips the kill switch, pauses
    the rollout or leaves ``guarded_auto`` and runs handoff before policy). Upstream trusted
    the stale ``autonomous.eligible`` (§6.18); here such intents become manual-only with the
    policy vocabulary's reason.
    """
    policy = _get(registry, "policy")
    if not isinstance(policy, dict):
        return []
    reasons: list[str] = []
    if _or(policy.get("mode"), "advisory") != "guarded_auto":
        reasons.append("policy_mode_not_guarded_auto")
    if _get(policy, "autonomous", "safety", "killSwitch") is True:
        reasons.append("autonomous_kill_switch_enabled")
    if _get(policy, "autonomous", "rollout", "pause", "manual") is True:
        reasons.append("autonomous_rollout_paused_manual")
    return unique_sorted(reasons)


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
        if isinstance(c, dict) and _or(c.get("suppressed"), False) is False
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
    candidate_key = _or(candidate.get("candidateId"), f"{loop_id}:{_or(category, 'unknown')}")
    auto = _obj(candidate.get("autonomous"))
    eligible = _or(auto.get("eligible"), False) is True
    manual_only = True if auto.get("manualOnly") is True else not eligible
    reasons_raw = _or(auto.get("reasons"), [])
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
    service = _obj(loop.get("service"))
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
            "transport": _or(loop.get("transport"), "local"),
            "service": strip_nulls(
                {
                    "baseUrl": service.get("baseUrl"),
                    "tokenEnv": service.get("tokenEnv"),
                    "retryAttempts": _or(service.get("retryAttempts"), 3),
                    "retryBackoffSeconds": _or(service.get("retryBackoffSeconds"), 1),
                }
            ),
            "metadata": _or(loop.get("metadata"), {}),
        }
    )


def build_intents(inputs: PlanInputs) -> tuple[list[dict[str, Any]], int]:
    """The sorted intents and the number of unsuppressed candidates."""
    policy = inputs.policy_state
    loops = _loop_map(inputs.registry)
    policy_trace_id = _or(policy.get("traceId"), inputs.trace_id)
    live = live_rail_reasons(inputs.registry)
    candidates = unsuppressed_candidates(policy)
    intents: list[dict[str, Any]] = []
    for candidate in candidates:
        intent = mapped_intent(candidate)
        if intent is None:
            continue
        loop_id = candidate.get("loopId")
        loop = loops.get(loop_id, {}) if isinstance(loop_id, str) else {}
        candidate_key = _or(
            candidate.get("candidateId"),
            f"{candidate.get('loopId')}:{_or(candidate.get('category'), 'unknown')}",
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
            1 for i in intents if _get(i, "autonomous", "eligible") is True
        ),
        "manualOnlyIntentCount": sum(
            1 for i in intents if _get(i, "autonomous", "manualOnly") is True
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
        for r in (_get(i, "autonomous", "reasons") or [])
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
        "fleetId": _or(policy.get("fleetId"), _or(inputs.registry.get("fleetId"), "default")),
        "traceId": inputs.trace_id,
        "policyTraceId": _or(policy.get("traceId"), inputs.trace_id),
        "mode": _or(policy.get("mode"), "advisory"),
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


# --- execution ----------------------------------------------------------------------------


def execution_eligibility(intent: Mapping[str, Any], mode: str) -> str | None:
    """Why ``intent`` is NOT in the ``mode`` execution pool (``None``: it is).

    ``intent_not_pending`` (already executed / failed / ambiguous in this plan), or for the
    autonomous pool ``autonomous_intent_not_eligible`` (see its ``autonomous.reasons``).
    """
    if intent.get("status") != PENDING:
        return "intent_not_pending"
    if mode == MODE_AUTONOMOUS and _get(intent, "autonomous", "eligible") is not True:
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
    #: set when no call must be made:
    #: ``autonomous_intent_not_eligible`` / ``missing_service_base_url``
    precheck_failure: str | None = None


def _int_setting(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


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
    transport = str(_or(intent.get("transport"), "local"))
    service = _obj(intent.get("service"))
    base_url = service.get("baseUrl") if isinstance(service.get("baseUrl"), str) else None
    token_env = service.get("tokenEnv") if isinstance(service.get("tokenEnv"), str) else None
    failure: str | None = None
    if mode == MODE_AUTONOMOUS and _get(intent, "autonomous", "eligible") is not True:
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
            "autonomousEligible": _get(call.intent, "autonomous", "eligible") is True,
            "controlExitCode": exit_code,
            "control": dict(control) if control is not None else None,
        }
    )


def _intent_execution(result: Mapping[str, Any]) -> dict[str, Any]:
    control = _obj(result.get("control"))
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
    prior_summary = _obj(plan.get("summary"))
    summary = summarize(
        intents,
        _or(prior_summary.get("candidateCount"), 0),
        _or(prior_summary.get("unsuppressedCandidateCount"), 0),
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
    ledger = _obj(plan.get("intentAttempts"))
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


# --- rollups (fleet-status reads these; §2.4) -----------------------------------------------


def _count_into(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def pending_manual_only_count(handoff: Mapping[str, Any] | None) -> int:
    """#intents ``pending_operator_confirmation`` and ``autonomous.manualOnly``."""
    intents = _get(handoff, "intents")
    return sum(
        1
        for i in (intents if isinstance(intents, list) else [])
        if isinstance(i, dict)
        and i.get("status") == PENDING
        and _get(i, "autonomous", "manualOnly") is True
    )


def outcome_rollup(
    handoff: Mapping[str, Any] | None, policy: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``{attempted, executed, ambiguous, failed, manual_backlog}`` (§2.4 ``outcomeRollup``).

    The first four come from the last execution when it was autonomous (else 0);
    ``manual_backlog`` = pending manual-only intents when a handoff state exists, else the
    policy's ``manualOnlyCount``, else 0.
    """
    execution = _get(handoff, "execution")
    execution = execution if isinstance(execution, dict) else {}
    autonomous = execution.get("mode") == MODE_AUTONOMOUS

    def pick(key: str) -> Any:
        return _or(execution.get(key), 0) if autonomous else 0

    if handoff is not None:
        backlog: Any = pending_manual_only_count(handoff)
    elif policy is not None:
        backlog = _or(policy.get("manualOnlyCount"), 0)
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
    results = _get(handoff, "execution", "results")
    for r in results if isinstance(results, list) else []:
        if isinstance(r, dict) and isinstance(r.get("reasonCode"), str):
            _count_into(counts, r["reasonCode"])
    return counts


def intent_reason_counts(handoff: Mapping[str, Any] | None) -> dict[str, int]:
    """``{reason: n}`` over every intent's ``autonomous.reasons`` (all statuses; §6.24)."""
    counts: dict[str, int] = {}
    intents = _get(handoff, "intents")
    for i in intents if isinstance(intents, list) else []:
        reasons = _get(i, "autonomous", "reasons")
        for r in reasons if isinstance(reasons, list) else []:
            if isinstance(r, str):
                _count_into(counts, r)
    return counts


def transport_gate_reason_counts(handoff: Mapping[str, Any] | None) -> dict[str, int]:
    """``byPath.transportGated.byReason``: failed/ambiguous results of ``sprite_service``
    intents, by ``reasonCode`` (``transport_execution_blocked`` when it has none)."""
    transports: dict[Any, Any] = {}
    intents = _get(handoff, "intents")
    for i in intents if isinstance(intents, list) else []:
        if isinstance(i, dict):
            transports.setdefault(i.get("intentId"), _or(i.get("transport"), "local"))
    counts: dict[str, int] = {}
    results = _get(handoff, "execution", "results")
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
    ledger = _get(handoff, "intentAttempts")
    out: dict[str, str] = {}
    for intent_id, entry in ledger.items() if isinstance(ledger, dict) else []:
        guard = _get(entry, "retryGuard")
        if isinstance(guard, str):
            out[intent_id] = guard
    return out


# --- fleet-status sections fed by the handoff artifacts (§2.4) --------------------------------


def _count_or_zero(obj: Any, key: str) -> Any:
    """jq ``.key // 0``."""
    return _or(_get(obj, key), 0)


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
    summary = _get(handoff, "summary")
    intents = _get(handoff, "intents")
    execution = _obj(_get(handoff, "execution"))
    rollup = outcome_rollup(handoff, policy)
    return _drop_nulls(
        {
            "mode": handoff.get("mode"),
            "reasonCodes": _or(handoff.get("reasonCodes"), []),
            "summary": {
                "intentCount": _or(
                    _get(summary, "intentCount"), len(intents) if isinstance(intents, list) else 0
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
    summary = _get(handoff, "summary")
    execution = _obj(_get(handoff, "execution"))
    return _drop_nulls(
        {
            "autoEligibleIntentCount": _count_or_zero(summary, "autoEligibleIntentCount"),
            "manualOnlyIntentCount": _count_or_zero(summary, "manualOnlyIntentCount"),
            "pendingManualOnlyCount": pending_manual_only_count(handoff),
            "executionMode": _or(execution.get("mode"), None),
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
    execution = _obj(row.get("execution"))
    summary = _obj(_get(row, "summary", "summary"))
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
            "reasonCodes": _or(_get(row, "summary", "reasonCodes"), []),
        }
    )
