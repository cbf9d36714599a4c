"""The intent-attempts ledger, the retry guard and the live registry rails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ops_manager.model._json import strip_nulls
from ops_manager.reducers.fleet_handoff._common import (
    GUARD_FOR_RESULT,
    INTENT_STATUS_FOR_RESULT,
    MODE_AUTONOMOUS,
    MODE_MANUAL,
    RESULT_FOR_INTENT_STATUS,
    RETRY_SUFFIX,
    as_object,
    get_path,
    or_default,
    unique_sorted,
)

# --- attempts ledger / retry guard ----------------------------------------------------------


def split_attempt_key(key: str) -> tuple[str, int]:
    """``(base key, attempt number)`` of a key used for an execution (``K`` -> ``(K, 1)``,
    ``K-retry-n`` -> ``(K, n + 1)``)."""
    match = RETRY_SUFFIX.match(key)
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
        # a row from handoff.jsonl may hold any JSON value here (a list is unhashable)
        if not isinstance(status, str) or status not in INTENT_STATUS_FOR_RESULT:
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
        result_status = RESULT_FOR_INTENT_STATUS.get(status) if isinstance(status, str) else None
        if result_status is None:
            continue
        execution = as_object(intent.get("execution"))
        rows.append(
            {
                "intentId": intent.get("intentId"),
                "idempotencyKey": or_default(
                    execution.get("idempotencyKey"), intent.get("idempotencyKey")
                ),
                "status": result_status,
                "executionMode": or_default(execution.get("mode"), MODE_AUTONOMOUS),
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
        found = get_path(row, "execution", "results")
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
    policy = get_path(registry, "policy")
    if not isinstance(policy, dict):
        return []
    reasons: list[str] = []
    if or_default(policy.get("mode"), "advisory") != "guarded_auto":
        reasons.append("policy_mode_not_guarded_auto")
    if get_path(policy, "autonomous", "safety", "killSwitch") is True:
        reasons.append("autonomous_kill_switch_enabled")
    if get_path(policy, "autonomous", "rollout", "pause", "manual") is True:
        reasons.append("autonomous_rollout_paused_manual")
    return unique_sorted(reasons)
