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

from ops_manager.reducers.fleet_handoff._attempts import (
    attempt_key,
    attempts_from_prior_state,
    attempts_from_telemetry,
    fold_attempts,
    live_rail_reasons,
    retry_guard,
    split_attempt_key,
)
from ops_manager.reducers.fleet_handoff._common import (
    DEFAULT_INTENT_CATEGORIES,
    EXECUTED,
    EXECUTION_AMBIGUOUS,
    EXECUTION_FAILED,
    GUARD_AMBIGUOUS,
    GUARD_FAILED,
    GUARD_FOR_RESULT,
    GUARD_PREFIX,
    INTENT_STATUS_FOR_RESULT,
    MODE_AUTONOMOUS,
    MODE_MANUAL,
    PENDING,
    intent_idempotency_key,
    slug,
    unique_sorted,
)
from ops_manager.reducers.fleet_handoff._execute import (
    ControlCall,
    TargetSelection,
    apply_execution,
    execute_telemetry_row,
    execution_eligibility,
    execution_result,
    outcome_for_exit,
    plan_control_call,
    select_targets,
)
from ops_manager.reducers.fleet_handoff._plan import (
    PlanInputs,
    build_intent,
    build_intents,
    build_plan,
    mapped_intent,
    plan_telemetry_row,
    reason_codes,
    summarize,
    unsuppressed_candidates,
)
from ops_manager.reducers.fleet_handoff._rollups import (
    intent_reason_counts,
    outcome_rollup,
    pending_manual_only_count,
    result_reason_counts,
    retry_guarded_intents,
    status_autonomous_handoff,
    status_handoff_section,
    status_latest_handoff_telemetry,
    transport_gate_reason_counts,
)

__all__ = [
    "DEFAULT_INTENT_CATEGORIES",
    "EXECUTED",
    "EXECUTION_AMBIGUOUS",
    "EXECUTION_FAILED",
    "GUARD_AMBIGUOUS",
    "GUARD_FAILED",
    "GUARD_FOR_RESULT",
    "GUARD_PREFIX",
    "INTENT_STATUS_FOR_RESULT",
    "MODE_AUTONOMOUS",
    "MODE_MANUAL",
    "PENDING",
    "ControlCall",
    "PlanInputs",
    "TargetSelection",
    "apply_execution",
    "attempt_key",
    "attempts_from_prior_state",
    "attempts_from_telemetry",
    "build_intent",
    "build_intents",
    "build_plan",
    "execute_telemetry_row",
    "execution_eligibility",
    "execution_result",
    "fold_attempts",
    "intent_idempotency_key",
    "intent_reason_counts",
    "live_rail_reasons",
    "mapped_intent",
    "outcome_for_exit",
    "outcome_rollup",
    "pending_manual_only_count",
    "plan_control_call",
    "plan_telemetry_row",
    "reason_codes",
    "result_reason_counts",
    "retry_guard",
    "retry_guarded_intents",
    "select_targets",
    "slug",
    "split_attempt_key",
    "status_autonomous_handoff",
    "status_handoff_section",
    "status_latest_handoff_telemetry",
    "summarize",
    "transport_gate_reason_counts",
    "unique_sorted",
    "unsuppressed_candidates",
]
