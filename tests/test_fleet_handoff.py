"""``fleet-handoff`` (``fleet.md`` §2.5, §4.3; DECISIONS 6.6, 6.8).

Three layers:

- decision tables for the pure reducer (:mod:`ops_manager.reducers.fleet_handoff`): every
  mapping, classification, pool, key, outcome and reason-code rule with the reason it returns;
- the engine with a stand-in control (fast; asserts the state and the ``handoff.jsonl`` rows,
  key order included);
- the CLI with the REAL loop-level control and the stub Superloop CLI (trace id and
  idempotency key reach ``<loop>/telemetry/control.jsonl``; a repeated run never executes
  twice; the retry guard holds until an operator confirms).

Policy states are written by hand in the §2.3 candidate shape, so these tests do not depend on
fleet-policy. Governance deadlines are relative to now.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.cli import main
from ops_manager.engine.control import ControlSettings
from ops_manager.engine.fleet_handoff import HandoffSettings, fleet_handoff
from ops_manager.errors import OpsError
from ops_manager.reducers import fleet_handoff as rh
from ops_manager.store import FleetPaths, LoopPaths
from tests.fleet_fixtures import guarded_auto_policy, registry_doc, sprite_loop, write_registry
from tests.runtime_fixtures import make_runtime_repo
from tests.service_process import stub_calls, stub_superloop_env

PROFILE = {
    "reconcile_failed": (
        "critical",
        "high",
        "Loop reconcile failed in fleet fan-out",
        "status_failed",
    ),
    "health_critical": ("critical", "high", "Loop health is critical", "health_critical"),
    "health_degraded": ("warning", "medium", "Loop health is degraded", "health_degraded"),
}

PLAN_KEYS = [
    "schemaVersion",
    "generatedAt",
    "updatedAt",
    "fleetId",
    "traceId",
    "policyTraceId",
    "mode",
    "source",
    "control",
    "intents",
    "summary",
    "reasonCodes",
    "intentAttempts",
]
INTENT_KEYS = [
    "intentId",
    "candidateId",
    "loopId",
    "category",
    "severity",
    "confidence",
    "rationale",
    "signal",
    "intent",
    "recommendedIntent",
    "status",
    "requiresOperatorConfirmation",
    "fleetTraceId",
    "policyTraceId",
    "candidateTraceId",
    "autonomous",
    "idempotencyKey",
    "transport",
    "service",
    "metadata",
]
RESULT_KEYS = [
    "intentId",
    "loopId",
    "intent",
    "traceId",
    "idempotencyKey",
    "requestedBy",
    "executedAt",
    "status",
    "reasonCode",
    "executionMode",
    "autonomousEligible",
    "controlExitCode",
    "control",
]
EXECUTION_KEYS = [
    "mode",
    "requestedBy",
    "requestedAt",
    "completedAt",
    "note",
    "requestedIntentCount",
    "executedIntentCount",
    "executedCount",
    "ambiguousCount",
    "failedCount",
    "results",
]


# --- builders -------------------------------------------------------------------------------


def candidate(
    loop_id: str,
    category: str,
    *,
    eligible: bool = False,
    reasons: list[str] | None = None,
    suppressed: bool = False,
    recommended: str | None = "cancel",
    trace: str | None = None,
    manual_only: bool | None = None,
) -> dict[str, Any]:
    """A policy candidate in the §2.3 shape (only the keys handoff reads, in order)."""
    severity, confidence, rationale, signal = PROFILE.get(
        category, ("info", "low", "custom", "custom")
    )
    if reasons is None:
        reasons = [] if eligible else ["category_not_allowlisted"]
    cand: dict[str, Any] = {
        "loopId": loop_id,
        "category": category,
        "signal": signal,
        "traceId": trace,
        "candidateId": f"{loop_id}:{category}",
        "severity": severity,
        "confidence": confidence,
        "rationale": rationale,
        "taxonomyVersion": "v1",
    }
    if recommended is not None:
        cand["recommendedIntent"] = recommended
    cand.update(
        suppressed=suppressed,
        autonomous={
            "mode": "guarded_auto",
            "eligible": eligible,
            "manualOnly": (not eligible) if manual_only is None else manual_only,
            "reasons": reasons,
        },
    )
    return cand


def policy_state(
    candidates: list[dict[str, Any]],
    *,
    mode: str = "guarded_auto",
    trace: str = "trace-policy-1",
    fleet_id: str = "fleet-h",
) -> dict[str, Any]:
    unsuppressed = [c for c in candidates if not c.get("suppressed")]
    return {
        "schemaVersion": "v1",
        "updatedAt": "2026-02-22T18:00:00Z",
        "fleetId": fleet_id,
        "traceId": trace,
        "mode": mode,
        "candidateCount": len(candidates),
        "unsuppressedCount": len(unsuppressed),
        "suppressedCount": len(candidates) - len(unsuppressed),
        "autoEligibleCount": sum(1 for c in unsuppressed if c["autonomous"]["eligible"]),
        "manualOnlyCount": sum(1 for c in unsuppressed if not c["autonomous"]["eligible"]),
        "candidates": candidates,
    }


def registry(
    loops: list[Any], *, mode: str = "guarded_auto", fleet_id: str = "fleet-h", **autonomous: Any
) -> dict[str, Any]:
    if mode == "guarded_auto":
        policy = guarded_auto_policy(**autonomous)
    else:
        policy = {"mode": mode, "autonomous": autonomous} if autonomous else {"mode": mode}
    return registry_doc(loops, fleet_id=fleet_id, policy=policy)


def normalized(loops: list[Any], **kwargs: Any) -> dict[str, Any]:
    """A normalised registry as the handoff reducer sees it (via the real normaliser)."""
    from ops_manager._timefmt import utc_now_epoch
    from ops_manager.reducers.fleet_registry import normalize_registry

    return normalize_registry(
        registry(loops, **kwargs), source_file="/r/registry.v1.json", now=utc_now_epoch()
    )


def plan_for(
    cands: list[dict[str, Any]],
    *,
    reg: dict[str, Any] | None = None,
    attempts: Mapping[str, Any] | None = None,
    trace: str = "trace-h1",
    policy_mode: str = "guarded_auto",
) -> dict[str, Any]:
    loops = sorted({c["loopId"] for c in cands}) or ["loop-x"]
    return rh.build_plan(
        rh.PlanInputs(
            policy_state=policy_state(cands, mode=policy_mode),
            registry=reg if reg is not None else normalized(loops),
            trace_id=trace,
            idempotency_prefix="fleet-handoff",
            generated_at="2026-02-22T18:00:00Z",
            registry_file="/r/registry.v1.json",
            policy_state_file="/r/policy-state.json",
            attempts=attempts or {},
        )
    )


def write_policy(repo: Path, state: Mapping[str, Any]) -> Path:
    target = FleetPaths.for_repo(repo).policy_state_file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(state, separators=(",", ":")) + "\n")
    return target


def handoff_rows(repo: Path) -> list[dict[str, Any]]:
    path = FleetPaths.for_repo(repo).handoff_telemetry_file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_state(repo: Path) -> dict[str, Any]:
    return json.loads(FleetPaths.for_repo(repo).handoff_state_file.read_text())


@attrs.define
class FakeControl:
    """Stands in for run_control: exit code per loop, every call recorded."""

    exits: dict[str, int] = attrs.field(factory=dict)
    calls: list[ControlSettings] = attrs.field(factory=list)

    def __call__(self, settings: ControlSettings) -> Any:
        self.calls.append(settings)
        code = self.exits.get(settings.loop_id, 0)
        status = {0: "confirmed", 2: "ambiguous"}.get(code, "failed_command")

        @attrs.frozen
        class Result:
            exit_code: int
            entry: dict[str, Any]

        return Result(code, {"status": status, "confirmed": code == 0})


# --- reducer: small rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Trace X/1", "trace-x-1"),
        ("reconcile_failed", "reconcile_failed"),
        ("--a--b--", "a-b"),
        ("lööp", "l-p"),
        ("fleet-handoff", "fleet-handoff"),
        ("", ""),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert rh.slug(text) == expected


def test_idempotency_key_example_from_spec() -> None:
    key = rh.intent_idempotency_key(
        "fleet-handoff", "trace-fleet-handoff-plan-1", "loop-red", "reconcile_failed", "cancel"
    )
    assert key == "fleet-handoff-trace-fleet-handoff-plan-1-loop-red-reconcile_failed-cancel"
    assert rh.intent_idempotency_key("P", "", "L", None, "cancel") == "p-l-unknown-cancel"


@pytest.mark.parametrize(
    ("cand", "intent"),
    [
        ({"category": "health_critical", "recommendedIntent": "cancel"}, "cancel"),
        ({"category": "reconcile_failed"}, "cancel"),
        ({"category": "health_degraded", "recommendedIntent": None}, "cancel"),
        ({"category": "custom_thing", "recommendedIntent": "approve"}, "approve"),
        ({"category": "custom_thing"}, None),
    ],
)
def test_intent_mapping(cand: dict[str, Any], intent: str | None) -> None:
    assert rh.mapped_intent(cand) == intent


@pytest.mark.parametrize(
    ("exit_code", "outcome"),
    [
        (0, ("executed", "control_confirmed")),
        (2, ("ambiguous", "control_ambiguous")),
        (1, ("failed", "control_failed_command")),
        (3, ("failed", "control_failed_command")),
    ],
)
def test_outcome_for_exit(exit_code: int, outcome: tuple[str, str]) -> None:
    assert rh.outcome_for_exit(exit_code) == outcome


# --- reducer: plan ------------------------------------------------------------------------


def test_plan_maps_unsuppressed_candidates_to_pending_cancel_intents() -> None:
    """R-HO-2: candidates without recommendedIntent still map to cancel; suppressed skipped."""
    plan = plan_for(
        [
            candidate("loop-red", "reconcile_failed", recommended=None),
            candidate("loop-blue", "health_degraded", recommended=None),
            candidate("loop-red", "health_critical", suppressed=True),
        ],
        trace="trace-fleet-handoff-plan-1",
    )
    assert list(plan) == PLAN_KEYS
    assert plan["summary"] == {
        "candidateCount": 3,
        "unsuppressedCandidateCount": 2,
        "intentCount": 2,
        "autoEligibleIntentCount": 0,
        "manualOnlyIntentCount": 2,
        "pendingConfirmationCount": 2,
        "executedCount": 0,
        "ambiguousCount": 0,
        "failedCount": 0,
    }
    assert [i["intent"] for i in plan["intents"]] == ["cancel", "cancel"]
    assert {i["status"] for i in plan["intents"]} == {"pending_operator_confirmation"}
    # sorted by (loopId, category, intent)
    assert [i["intentId"] for i in plan["intents"]] == [
        "loop-blue:health_degraded:cancel",
        "loop-red:reconcile_failed:cancel",
    ]
    assert plan["intents"][0]["idempotencyKey"].startswith(
        "fleet-handoff-trace-fleet-handoff-plan-1-"
    )
    assert plan["reasonCodes"] == [
        "fleet_handoff_action_required",
        "fleet_handoff_confirmation_pending",
    ]
    # no recommendedIntent on the candidate -> key dropped (drop-nulls), no candidateTraceId
    assert "recommendedIntent" not in plan["intents"][0]
    assert "candidateTraceId" not in plan["intents"][0]


def test_intent_object_shape_and_registry_lookup() -> None:
    reg = normalized(
        [
            sprite_loop("loop-s", "http://sprite.local", retry_attempts=2, metadata={"o": "a"}),
            "loop-l",
        ]
    )
    plan = plan_for(
        [
            candidate("loop-s", "health_critical", eligible=True, trace="t-s"),
            candidate("loop-l", "reconcile_failed", eligible=True),
            candidate("loop-unknown", "reconcile_failed"),
        ],
        reg=reg,
    )
    by_loop = {i["loopId"]: i for i in plan["intents"]}
    sprite = by_loop["loop-s"]
    assert list(sprite) == INTENT_KEYS
    assert sprite["transport"] == "sprite_service"
    assert sprite["service"] == {
        "baseUrl": "http://sprite.local",
        "tokenEnv": "OPS_MANAGER_TEST_SERVICE_TOKEN",
        "retryAttempts": 2,
        "retryBackoffSeconds": 1,
    }
    assert sprite["metadata"] == {"o": "a"}
    assert sprite["candidateTraceId"] == "t-s"
    assert sprite["fleetTraceId"] == "trace-h1"
    assert sprite["policyTraceId"] == "trace-policy-1"
    # a loop the registry does not know: local transport, default service settings
    unknown = by_loop["loop-unknown"]
    assert unknown["transport"] == "local"
    assert unknown["service"] == {"retryAttempts": 3, "retryBackoffSeconds": 1}
    assert unknown["metadata"] == {}


def test_classification_is_copied_from_policy() -> None:
    """R-HO-3: eligible red, manual-only blue with its named reason."""
    plan = plan_for(
        [
            candidate("loop-red", "reconcile_failed", eligible=True),
            candidate("loop-blue", "health_degraded", reasons=["category_not_allowlisted"]),
        ]
    )
    by_loop = {i["loopId"]: i for i in plan["intents"]}
    assert by_loop["loop-red"]["autonomous"] == {
        "eligible": True,
        "manualOnly": False,
        "reasons": [],
    }
    assert by_loop["loop-blue"]["autonomous"] == {
        "eligible": False,
        "manualOnly": True,
        "reasons": ["category_not_allowlisted"],
    }
    assert plan["summary"]["autoEligibleIntentCount"] == 1
    assert plan["summary"]["manualOnlyIntentCount"] == 1
    assert "fleet_handoff_auto_eligible_intents" in plan["reasonCodes"]


@pytest.mark.parametrize(
    ("cands", "codes"),
    [
        ([], ["fleet_handoff_no_action"]),
        (
            [candidate("loop-a", "custom_thing", recommended=None)],
            [
                "fleet_handoff_no_action",
                "fleet_handoff_partial_mapping",
                "fleet_handoff_unmapped_candidates",
            ],
        ),
        (
            [
                candidate("loop-a", "custom_thing", recommended=None),
                candidate("loop-a", "health_critical"),
            ],
            [
                "fleet_handoff_action_required",
                "fleet_handoff_confirmation_pending",
                "fleet_handoff_partial_mapping",
            ],
        ),
        (
            [candidate("loop-a", "health_critical", suppressed=True)],
            ["fleet_handoff_no_action"],
        ),
    ],
)
def test_plan_reason_codes(cands: list[dict[str, Any]], codes: list[str]) -> None:
    assert plan_for(cands)["reasonCodes"] == codes


# --- reducer: retry guard and ledger --------------------------------------------------------


def result_row(
    intent_id: str,
    status: str,
    key: str,
    mode: str = "autonomous",
    at: str = "2026-02-22T18:00:00Z",
) -> dict[str, Any]:
    return {
        "intentId": intent_id,
        "idempotencyKey": key,
        "status": status,
        "executionMode": mode,
        "executedAt": at,
        "traceId": "t",
    }


@pytest.mark.parametrize(
    ("rows", "guard"),
    [
        ([("ambiguous", "autonomous")], "autonomous_retry_guard_ambiguous"),
        ([("failed", "autonomous")], "autonomous_retry_guard_failed"),
        ([("failed", "manual")], "autonomous_retry_guard_failed"),
        ([("executed", "autonomous")], None),
        # only an operator's successful execution lifts a guard
        (
            [("ambiguous", "autonomous"), ("executed", "autonomous")],
            "autonomous_retry_guard_ambiguous",
        ),
        ([("ambiguous", "autonomous"), ("executed", "manual")], None),
        ([("ambiguous", "autonomous"), ("failed", "manual")], "autonomous_retry_guard_failed"),
        ([("executed", "manual"), ("ambiguous", "autonomous")], "autonomous_retry_guard_ambiguous"),
    ],
)
def test_retry_guard_decision_table(rows: list[tuple[str, str]], guard: str | None) -> None:
    ledger = rh.fold_attempts({}, [result_row("i", s, "K", m) for s, m in rows])
    assert rh.retry_guard(ledger, "i") == guard


def test_guard_persists_across_plans_until_confirmed() -> None:
    """DECISIONS 6.8: a plan run does not clear the guard (upstream: one cycle)."""
    cands = [candidate("loop-red", "reconcile_failed", eligible=True)]
    ledger = rh.fold_attempts(
        {}, [result_row("loop-red:reconcile_failed:cancel", "ambiguous", "K")]
    )
    plan1 = plan_for(cands, attempts=ledger)
    intent = plan1["intents"][0]
    assert intent["autonomous"] == {
        "eligible": False,
        "manualOnly": True,
        "reasons": ["autonomous_retry_guard_ambiguous"],
    }
    assert intent["status"] == "pending_operator_confirmation"
    assert "fleet_handoff_retry_guarded" in plan1["reasonCodes"]
    assert "fleet_handoff_confirmation_pending" in plan1["reasonCodes"]
    # the next run reads the ledger carried by plan1: still guarded
    plan2 = plan_for(cands, attempts=rh.attempts_from_prior_state(plan1))
    assert plan2["intents"][0]["autonomous"]["eligible"] is False
    assert "fleet_handoff_retry_guarded" in plan2["reasonCodes"]


def test_upstream_state_without_ledger_still_guards() -> None:
    """A handoff-state written by upstream (no intentAttempts) is read from intent statuses."""
    prior = {
        "intents": [
            {
                "intentId": "loop-a:reconcile_failed:cancel",
                "status": "execution_ambiguous",
                "idempotencyKey": "K",
                "execution": {"mode": "autonomous", "idempotencyKey": "K", "executedAt": "x"},
            },
            {"intentId": "loop-b:reconcile_failed:cancel", "status": "execution_failed"},
            {"intentId": "loop-c:reconcile_failed:cancel", "status": "executed"},
            {
                "intentId": "loop-d:reconcile_failed:cancel",
                "status": "pending_operator_confirmation",
            },
        ]
    }
    ledger = rh.attempts_from_prior_state(prior)
    assert rh.retry_guard(ledger, "loop-a:reconcile_failed:cancel") == rh.GUARD_AMBIGUOUS
    assert rh.retry_guard(ledger, "loop-b:reconcile_failed:cancel") == rh.GUARD_FAILED
    assert rh.retry_guard(ledger, "loop-c:reconcile_failed:cancel") is None
    assert "loop-d:reconcile_failed:cancel" not in ledger


@pytest.mark.parametrize(
    ("entry", "mode", "key"),
    [
        (None, "autonomous", "K"),
        (None, "manual", "K"),
        (
            {
                "baseKey": "OTHER",
                "attempt": 3,
                "idempotencyKey": "OTHER-retry-2",
                "status": "ambiguous",
            },
            "manual",
            "K",
        ),
        (
            {"baseKey": "K", "attempt": 1, "idempotencyKey": "K", "status": "executed"},
            "autonomous",
            "K",
        ),
        (
            {"baseKey": "K", "attempt": 2, "idempotencyKey": "K-retry-1", "status": "executed"},
            "autonomous",
            "K-retry-1",
        ),
        (
            {"baseKey": "K", "attempt": 1, "idempotencyKey": "K", "status": "ambiguous"},
            "manual",
            "K-retry-1",
        ),
        (
            {"baseKey": "K", "attempt": 2, "idempotencyKey": "K-retry-1", "status": "failed"},
            "manual",
            "K-retry-2",
        ),
        (
            {"baseKey": "K", "attempt": 1, "idempotencyKey": "K", "status": "ambiguous"},
            "autonomous",
            "K",
        ),
    ],
)
def test_attempt_key_table(entry: dict[str, Any] | None, mode: str, key: str) -> None:
    """First attempt = the intent's key; executed = same key (replay, never twice); an
    operator confirming a guarded intent = the next key of the chain."""
    assert rh.attempt_key("K", entry, mode) == key


def test_split_attempt_key_round_trip() -> None:
    assert rh.split_attempt_key("K") == ("K", 1)
    assert rh.split_attempt_key("K-retry-1") == ("K", 2)
    assert rh.split_attempt_key("K-retry-12") == ("K", 13)


# --- reducer: live registry rails -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"safety": {"killSwitch": True}}, "autonomous_kill_switch_enabled"),
        ({"rollout": {"pause": {"manual": True}}}, "autonomous_rollout_paused_manual"),
        ({"mode": "advisory"}, "policy_mode_not_guarded_auto"),
    ],
)
def test_live_registry_rails_override_stale_eligibility(
    kwargs: dict[str, Any], reason: str
) -> None:
    reg = normalized(["loop-red", "loop-blue"], **kwargs)
    plan = plan_for(
        [
            candidate("loop-red", "reconcile_failed", eligible=True),
            candidate("loop-blue", "health_degraded", reasons=["category_not_allowlisted"]),
        ],
        reg=reg,
    )
    red, blue = (i for i in sorted(plan["intents"], key=lambda i: i["loopId"] != "loop-red"))
    assert red["autonomous"] == {"eligible": False, "manualOnly": True, "reasons": [reason]}
    # an intent that was not eligible keeps exactly the policy's reasons
    assert blue["autonomous"]["reasons"] == ["category_not_allowlisted"]
    assert plan["summary"]["autoEligibleIntentCount"] == 0


def test_live_rails_empty_for_a_clean_guarded_registry() -> None:
    assert rh.live_rail_reasons(normalized(["a"])) == []
    assert rh.live_rail_reasons({}) == []


# --- reducer: pools, filters, calls ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "eligible", "mode", "reason"),
    [
        ("pending_operator_confirmation", True, "autonomous", None),
        ("pending_operator_confirmation", False, "autonomous", "autonomous_intent_not_eligible"),
        ("pending_operator_confirmation", False, "manual", None),
        ("pending_operator_confirmation", True, "manual", None),
        ("executed", True, "manual", "intent_not_pending"),
        ("execution_ambiguous", True, "autonomous", "intent_not_pending"),
    ],
)
def test_execution_eligibility(status: str, eligible: bool, mode: str, reason: str | None) -> None:
    intent = {"status": status, "autonomous": {"eligible": eligible}}
    assert rh.execution_eligibility(intent, mode) == reason


def test_select_targets_reports_every_unknown_filter() -> None:
    """DECISIONS 6.6: unknown filters are reported even when the pool is not empty."""
    plan = plan_for(
        [
            candidate("loop-a", "reconcile_failed", eligible=True),
            candidate("loop-b", "reconcile_failed"),
        ]
    )
    auto = rh.select_targets(plan["intents"], "autonomous", ["loop-a", "loop-b", "nope"], [])
    assert auto.missing_loops == ["loop-b", "nope"]  # loop-b exists but is not eligible
    assert [t["loopId"] for t in auto.targets] == ["loop-a"]
    manual = rh.select_targets(
        plan["intents"], "manual", [], ["loop-b:reconcile_failed:cancel", "x:y:cancel"]
    )
    assert manual.missing_intents == ["x:y:cancel"]
    assert [t["loopId"] for t in manual.targets] == ["loop-b"]
    assert rh.select_targets(plan["intents"], "manual").missing_loops == []


def test_plan_control_call_decisions() -> None:
    reg = normalized(["loop-a"])
    plan = plan_for([candidate("loop-a", "health_critical", eligible=True)], reg=reg)
    intent = plan["intents"][0]
    call = rh.plan_control_call(
        intent, mode="manual", trace_id="tr", prefix="fleet-handoff", note="why", attempts={}
    )
    assert call.note == "why | fleet_handoff:manual:loop-a:health_critical:cancel"
    assert call.idempotency_key == intent["idempotencyKey"]
    assert call.trace_id == "tr"
    assert call.precheck_failure is None
    bare = rh.plan_control_call(
        intent, mode="autonomous", trace_id="tr", prefix="p", note=None, attempts={}
    )
    assert bare.note == "fleet_handoff:autonomous:loop-a:health_critical:cancel"
    # pre-check failures, each with its reason
    not_eligible = dict(intent, autonomous={"eligible": False, "manualOnly": True, "reasons": []})
    assert (
        rh.plan_control_call(
            not_eligible, mode="autonomous", trace_id="t", prefix="p", note=None, attempts={}
        ).precheck_failure
        == "autonomous_intent_not_eligible"
    )
    no_url = dict(intent, transport="sprite_service", service={"retryAttempts": 3})
    call = rh.plan_control_call(
        no_url, mode="manual", trace_id="t", prefix="p", note=None, attempts={}
    )
    assert call.precheck_failure == "missing_service_base_url"
    row = rh.execution_result(
        call, mode="manual", requested_by="op", executed_at="T", exit_code=0, control=None
    )
    assert (row["status"], row["reasonCode"], row["controlExitCode"]) == (
        "failed",
        "missing_service_base_url",
        1,
    )
    assert "control" not in row
    # empty intent key -> upstream fallback <prefix>-<loop>-<intent>
    keyless = dict(intent, idempotencyKey="")
    assert (
        rh.plan_control_call(
            keyless, mode="manual", trace_id="t", prefix="pfx", note=None, attempts={}
        ).idempotency_key
        == "pfx-loop-a-cancel"
    )


def test_apply_execution_matches_the_upstream_shape() -> None:
    """A.4: statuses replaced in place, ``execution`` appended last, codes recomputed."""
    plan = plan_for(
        [
            candidate("loop-ok", "reconcile_failed", eligible=True),
            candidate("loop-amb", "reconcile_failed", eligible=True),
            candidate("loop-fail", "reconcile_failed", eligible=True),
        ]
    )
    results = []
    for intent, code in zip(plan["intents"], (2, 1, 0), strict=True):
        call = rh.plan_control_call(
            intent,
            mode="autonomous",
            trace_id="trace-h1",
            prefix="fleet-handoff",
            note=None,
            attempts={},
        )
        control = {
            "status": {0: "confirmed", 2: "ambiguous"}.get(code, "failed_command"),
            "confirmed": code == 0,
        }
        results.append(
            rh.execution_result(
                call,
                mode="autonomous",
                requested_by="ops-bot",
                executed_at="T",
                exit_code=code,
                control=control,
            )
        )
    state = rh.apply_execution(
        plan,
        mode="autonomous",
        requested_by="ops-bot",
        requested_at="T0",
        completed_at="T1",
        note=None,
        requested_count=3,
        results=results,
    )
    assert list(state)[-1] == "execution"
    assert list(state)[:-1] == PLAN_KEYS
    assert list(state["execution"]) == EXECUTION_KEYS
    assert state["execution"]["note"] is None  # kept (§6.7)
    assert [list(r) for r in state["execution"]["results"]] == [RESULT_KEYS] * 3
    assert (
        state["execution"]["executedCount"],
        state["execution"]["ambiguousCount"],
        state["execution"]["failedCount"],
    ) == (1, 1, 1)
    statuses = {i["loopId"]: i["status"] for i in state["intents"]}
    assert statuses == {
        "loop-amb": "execution_ambiguous",
        "loop-fail": "execution_failed",
        "loop-ok": "executed",
    }
    assert state["reasonCodes"] == [
        "fleet_handoff_action_required",
        "fleet_handoff_auto_eligible_intents",
        "fleet_handoff_executed",
        "fleet_handoff_execution_ambiguous",
        "fleet_handoff_execution_failed",
    ]
    executed = next(i for i in state["intents"] if i["status"] == "executed")
    assert executed["execution"] == {
        "mode": "autonomous",
        "executedAt": "T",
        "requestedBy": "ops-bot",
        "status": "executed",
        "reasonCode": "control_confirmed",
        "traceId": "trace-h1",
        "idempotencyKey": executed["idempotencyKey"],
        "autonomousEligible": True,
        "controlExitCode": 0,
        "controlStatus": "confirmed",
        "confirmed": True,
    }
    # the ledger guards the two that did not execute, and is rebuildable from telemetry
    assert set(rh.retry_guarded_intents(state)) == {
        "loop-amb:reconcile_failed:cancel",
        "loop-fail:reconcile_failed:cancel",
    }
    row = rh.execute_telemetry_row(state)
    assert list(row) == ["timestamp", "category", "fleetId", "traceId", "execution", "summary"]
    assert rh.attempts_from_telemetry([row]) == state["intentAttempts"]


# --- reducer: rollups for fleet-status ------------------------------------------------------


def test_rollups() -> None:
    state = {
        "intents": [
            {
                "intentId": "a",
                "transport": "local",
                "status": "executed",
                "autonomous": {"manualOnly": False, "reasons": []},
            },
            {
                "intentId": "b",
                "transport": "sprite_service",
                "status": "execution_failed",
                "autonomous": {"manualOnly": False, "reasons": []},
            },
            {
                "intentId": "c",
                "transport": "sprite_service",
                "status": "execution_ambiguous",
                "autonomous": {"reasons": []},
            },
            {
                "intentId": "d",
                "status": "pending_operator_confirmation",
                "autonomous": {"manualOnly": True, "reasons": ["category_not_allowlisted", "x"]},
            },
        ],
        "execution": {
            "mode": "autonomous",
            "requestedIntentCount": 3,
            "executedCount": 1,
            "ambiguousCount": 1,
            "failedCount": 1,
            "results": [
                {"intentId": "a", "status": "executed", "reasonCode": "control_confirmed"},
                {"intentId": "b", "status": "failed", "reasonCode": "control_failed_command"},
                {"intentId": "c", "status": "ambiguous"},
            ],
        },
    }
    assert rh.outcome_rollup(state, None) == {
        "attempted": 3,
        "executed": 1,
        "ambiguous": 1,
        "failed": 1,
        "manual_backlog": 1,
    }
    manual = dict(state, execution=dict(state["execution"], mode="manual"))
    assert rh.outcome_rollup(manual, {"manualOnlyCount": 9})["attempted"] == 0
    assert rh.outcome_rollup(None, {"manualOnlyCount": 4})["manual_backlog"] == 4
    assert rh.outcome_rollup(None, None)["manual_backlog"] == 0
    assert rh.transport_gate_reason_counts(state) == {
        "control_failed_command": 1,
        "transport_execution_blocked": 1,
    }
    assert rh.result_reason_counts(state) == {"control_confirmed": 1, "control_failed_command": 1}
    assert rh.intent_reason_counts(state) == {"category_not_allowlisted": 1, "x": 1}
    assert rh.pending_manual_only_count(state) == 1


# --- property: the autonomous pool -----------------------------------------------------------

CATEGORIES = ["reconcile_failed", "health_critical", "health_degraded", "custom_thing"]


@st.composite
def candidate_sets(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    loops = draw(
        st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=0, max_size=4, unique=True)
    )
    cands = []
    for loop in loops:
        for cat in draw(st.lists(st.sampled_from(CATEGORIES), max_size=3, unique=True)):
            cands.append(
                candidate(
                    f"loop-{loop}",
                    cat,
                    eligible=draw(st.booleans()),
                    suppressed=draw(st.booleans()),
                    recommended=draw(st.sampled_from(["cancel", None])),
                )
            )
    rows = [
        result_row(
            f"{c['candidateId']}:cancel",
            draw(st.sampled_from(["executed", "ambiguous", "failed"])),
            "K",
            draw(st.sampled_from(["manual", "autonomous"])),
        )
        for c in cands
        if draw(st.booleans())
    ]
    return cands, rh.fold_attempts({}, rows)


@settings(max_examples=150, deadline=None)
@given(candidate_sets(), st.booleans())
def test_autonomous_pool_never_holds_guarded_or_ineligible_intents(
    data: tuple[list[dict[str, Any]], dict[str, Any]], kill_switch: bool
) -> None:
    cands, ledger = data
    reg = normalized(["loop-a"], safety={"killSwitch": kill_switch})
    plan = plan_for(cands, reg=reg, attempts=ledger)
    pool = rh.select_targets(plan["intents"], "autonomous").targets
    for intent in pool:
        assert intent["autonomous"]["eligible"] is True
        assert rh.retry_guard(ledger, intent["intentId"]) is None
        assert not any(r.startswith(rh.GUARD_PREFIX) for r in intent["autonomous"]["reasons"])
    if kill_switch:
        assert pool == []
    # classification is always consistent and reasons sorted
    for intent in plan["intents"]:
        auto = intent["autonomous"]
        assert auto["manualOnly"] is not auto["eligible"] or auto["manualOnly"] is True
        assert auto["reasons"] == sorted(set(auto["reasons"]))
    assert plan["reasonCodes"] == sorted(set(plan["reasonCodes"]))
    manual_pool = rh.select_targets(plan["intents"], "manual").targets
    assert len(manual_pool) == plan["summary"]["intentCount"]


# --- engine (stand-in control) --------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("USER", "ops-bot")
    monkeypatch.delenv("OPS_MANAGER_TRACE_ID", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    return root.resolve()


def seed(
    repo: Path,
    cands: list[dict[str, Any]],
    *,
    loops: list[Any] | None = None,
    mode: str = "guarded_auto",
    **autonomous: Any,
) -> None:
    loop_ids = loops if loops is not None else sorted({c["loopId"] for c in cands}) or ["loop-x"]
    write_registry(repo, registry(loop_ids, mode=mode, **autonomous))
    write_policy(repo, policy_state(cands, mode=mode))


def run(repo: Path, control: FakeControl | None = None, **kwargs: Any) -> dict[str, Any]:
    return fleet_handoff(HandoffSettings(repo=repo, **kwargs), control=control).state


def test_plan_run_writes_state_and_one_plan_row(repo: Path) -> None:
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    state = run(repo)
    assert read_state(repo) == state
    assert state["traceId"] == "trace-policy-1"  # policy traceId is the default
    assert state["source"] == {
        "registryFile": str(FleetPaths.for_repo(repo).registry_file),
        "policyStateFile": str(FleetPaths.for_repo(repo).policy_state_file),
    }
    rows = handoff_rows(repo)
    assert len(rows) == 1
    assert list(rows[0]) == ["timestamp", "category", "fleetId", "traceId", "mode", "summary"]
    assert rows[0]["category"] == "fleet_handoff_plan"
    assert rows[0]["summary"]["policyTraceId"] == "trace-policy-1"
    assert "execution" not in state


def test_autonomous_execute_with_mixed_outcomes(repo: Path) -> None:
    """R-HO-1 / A.4: 0/2/1 -> executed / ambiguous / failed; rows: plan then execute."""
    seed(
        repo,
        [
            candidate("loop-ok", "reconcile_failed", eligible=True),
            candidate("loop-amb", "reconcile_failed", eligible=True),
            candidate("loop-fail", "reconcile_failed", eligible=True),
            candidate("loop-man", "health_degraded"),
        ],
    )
    control = FakeControl({"loop-amb": 2, "loop-fail": 1})
    state = run(repo, control, mode="autonomous", trace_id="trace-h3")
    execution = state["execution"]
    assert execution["requestedIntentCount"] == 3
    assert (execution["executedCount"], execution["ambiguousCount"], execution["failedCount"]) == (
        1,
        1,
        1,
    )
    assert [c.loop_id for c in control.calls] == ["loop-amb", "loop-fail", "loop-ok"]
    for call in control.calls:
        assert call.trace_id == "trace-h3"
        assert (
            call.idempotency_key == f"fleet-handoff-trace-h3-{call.loop_id}-reconcile_failed-cancel"
        )
        assert call.by == "ops-bot"
        assert call.note == f"fleet_handoff:autonomous:{call.loop_id}:reconcile_failed:cancel"
        assert (call.timeout_seconds, call.interval_seconds, call.confirm) == (30, 2, True)
    man = next(i for i in state["intents"] if i["loopId"] == "loop-man")
    assert man["status"] == "pending_operator_confirmation"
    rows = handoff_rows(repo)
    assert [r["category"] for r in rows] == ["fleet_handoff_plan", "fleet_handoff_execute"]
    assert rows[1]["execution"] == execution
    assert rows[1]["summary"] == {"summary": state["summary"], "reasonCodes": state["reasonCodes"]}


def test_manual_execute_with_filters_note_and_no_runtime_confirm(repo: Path) -> None:
    seed(
        repo,
        [
            candidate("loop-a", "reconcile_failed"),
            candidate("loop-b", "reconcile_failed"),
            candidate("loop-b", "health_critical"),
        ],
    )
    control = FakeControl()
    state = run(
        repo,
        control,
        mode="manual",
        loops=("loop-b",),
        intent_ids=("loop-b:health_critical:cancel",),
        by="oncall",
        note="manual_action",
        timeout_seconds=0,
        interval_seconds=0,
        runtime_confirm=False,
    )
    assert [c.loop_id for c in control.calls] == ["loop-b"]
    call = control.calls[0]
    assert call.note == "manual_action | fleet_handoff:manual:loop-b:health_critical:cancel"
    assert (call.by, call.confirm, call.timeout_seconds) == ("oncall", False, 0)
    assert state["execution"]["note"] == "manual_action"
    assert state["execution"]["requestedBy"] == "oncall"
    assert state["summary"]["executedCount"] == 1
    assert state["summary"]["pendingConfirmationCount"] == 2


@pytest.mark.parametrize(
    ("mode", "kwargs", "message"),
    [
        (
            "manual",
            {"loops": ("loop-zzz",)},
            "loop filter not found in manual execution intents: loop-zzz",
        ),
        (
            "autonomous",
            {"loops": ("loop-a", "loop-b", "nope")},
            "loop filter not found in autonomous execution intents: loop-b,nope",
        ),
        (
            "manual",
            {"intent_ids": ("loop-a:reconcile_failed:cancel", "bogus")},
            "intent filter not found in manual execution intents: bogus",
        ),
    ],
)
def test_unknown_filters_are_errors_and_write_no_state(
    repo: Path, mode: str, kwargs: dict[str, Any], message: str
) -> None:
    """DECISIONS 6.6 (upstream only failed on an empty pool)."""
    seed(
        repo,
        [
            candidate("loop-a", "reconcile_failed", eligible=True),
            candidate("loop-b", "reconcile_failed"),
        ],
    )
    control = FakeControl()
    with pytest.raises(OpsError) as err:
        run(repo, control, mode=mode, **kwargs)
    assert err.value.message == message
    assert control.calls == []
    assert not FleetPaths.for_repo(repo).handoff_state_file.exists()
    assert [r["category"] for r in handoff_rows(repo)] == ["fleet_handoff_plan"]


def test_autonomous_requires_guarded_auto_policy(repo: Path) -> None:
    """R-HO-5: mode taken from the policy state."""
    seed(repo, [candidate("loop-a", "reconcile_failed")], mode="advisory")
    with pytest.raises(OpsError, match="--autonomous-execute requires policy mode guarded_auto"):
        run(repo, FakeControl(), mode="autonomous")


def test_stale_policy_with_kill_switch_flipped_in_registry_executes_nothing(repo: Path) -> None:
    seed(repo, [candidate("loop-a", "reconcile_failed", eligible=True)])
    write_registry(repo, registry(["loop-a"], safety={"killSwitch": True}))
    control = FakeControl()
    state = run(repo, control, mode="autonomous")
    assert control.calls == []
    assert state["execution"]["requestedIntentCount"] == 0
    assert state["intents"][0]["autonomous"]["reasons"] == ["autonomous_kill_switch_enabled"]


def test_retry_guard_lifecycle_engine(repo: Path) -> None:
    """Guard holds over autonomous and plan runs; an operator's confirmation executes with a
    fresh key and lifts it; a later autonomous run replays that key (never executes twice)."""
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    base = "fleet-handoff-trace-policy-1-loop-red-reconcile_failed-cancel"
    control = FakeControl({"loop-red": 2})
    run1 = run(repo, control, mode="autonomous")
    assert run1["execution"]["ambiguousCount"] == 1
    for _ in range(2):  # autonomous, then plan-only, then autonomous again: still guarded
        guarded = run(repo, control, mode="autonomous")
        assert guarded["execution"]["requestedIntentCount"] == 0
        assert guarded["intents"][0]["autonomous"]["reasons"] == [
            "autonomous_retry_guard_ambiguous"
        ]
        assert guarded["intents"][0]["status"] == "pending_operator_confirmation"
        assert {"fleet_handoff_retry_guarded", "fleet_handoff_confirmation_pending"} <= set(
            guarded["reasonCodes"]
        )
        run(repo, control)
    assert [c.idempotency_key for c in control.calls] == [base]
    # the operator confirms; the runtime answers ambiguous again: still guarded, next key
    confirm1 = run(repo, control, mode="manual")
    assert confirm1["execution"]["results"][0]["idempotencyKey"] == f"{base}-retry-1"
    assert run(repo)["intents"][0]["autonomous"]["eligible"] is False
    control.exits["loop-red"] = 0
    confirm2 = run(repo, control, mode="manual", by="oncall")
    assert confirm2["execution"]["results"][0]["idempotencyKey"] == f"{base}-retry-2"
    assert confirm2["execution"]["results"][0]["status"] == "executed"
    # guard lifted: eligible again; an autonomous run reuses the executed key (replay)
    after = run(repo, control, mode="autonomous")
    assert after["intents"][0]["autonomous"]["eligible"] is True
    assert after["execution"]["results"][0]["idempotencyKey"] == f"{base}-retry-2"
    assert [c.idempotency_key for c in control.calls] == [
        base,
        f"{base}-retry-1",
        f"{base}-retry-2",
        f"{base}-retry-2",
    ]


def test_guard_rebuilt_from_telemetry_when_state_is_gone(repo: Path) -> None:
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    run(repo, FakeControl({"loop-red": 1}), mode="autonomous")
    FleetPaths.for_repo(repo).handoff_state_file.unlink()
    state = run(repo)
    assert state["intents"][0]["autonomous"]["reasons"] == ["autonomous_retry_guard_failed"]


def test_sprite_service_call_settings_and_token_env(repo: Path) -> None:
    seed(
        repo,
        [
            candidate("loop-s", "reconcile_failed", eligible=True),
            candidate("loop-t", "reconcile_failed", eligible=True),
        ],
        loops=[
            sprite_loop("loop-s", "http://sprite.local", retry_attempts=1, retry_backoff_seconds=0),
            sprite_loop("loop-t", "http://other.local", token_env="UNSET_TOKEN_VAR"),
        ],
        safety={"maxActionsPerRun": 5},
    )
    control = FakeControl()
    fleet_handoff(
        HandoffSettings(repo=repo, mode="manual"),
        control=control,
        env={"OPS_MANAGER_TEST_SERVICE_TOKEN": "tok-s", "OPS_MANAGER_SERVICE_TOKEN": "fallback"},
    )
    by_loop = {c.loop_id: c for c in control.calls}
    s, t = by_loop["loop-s"], by_loop["loop-t"]
    assert s.transport == "sprite_service"
    assert s.transport_config.service_base_url == "http://sprite.local"
    assert s.transport_config.service_token == "tok-s"
    assert (s.transport_config.retry_attempts, s.transport_config.retry_backoff_seconds) == (1, 0)
    assert t.transport_config.service_token == "fallback"
    assert s.by == "unknown"  # env replaced: no USER


def test_control_that_cannot_start_is_a_failed_result(repo: Path) -> None:
    seed(repo, [candidate("loop-a", "reconcile_failed", eligible=True)])

    def broken(settings: ControlSettings) -> Any:
        raise OpsError("transport not available: nope")

    state = fleet_handoff(HandoffSettings(repo=repo, mode="autonomous"), control=broken).state
    result = state["execution"]["results"][0]
    assert (result["status"], result["reasonCode"], result["controlExitCode"]) == (
        "failed",
        "control_failed_command",
        1,
    )
    # why is in the document (the command's whole output), not on stderr
    assert result["control"] == {
        "status": "failed_command",
        "confirmed": False,
        "error": "transport not available: nope",
    }


def test_governance_expiry_fails_closed(repo: Path) -> None:
    """The registry is re-validated with the handoff's clock: once reviewBy passes, handoff
    stops (exit 1) before anything is planned or executed."""
    seed(repo, [candidate("loop-a", "reconcile_failed", eligible=True)])
    from ops_manager._timefmt import parse_ts

    doc = json.loads(FleetPaths.for_repo(repo).registry_file.read_text())
    review_by = parse_ts(doc["policy"]["autonomous"]["governance"]["reviewBy"])
    assert review_by is not None
    control = FakeControl()
    with pytest.raises(OpsError, match="reviewBy must be in the future"):
        fleet_handoff(
            HandoffSettings(repo=repo, mode="autonomous"),
            control=control,
            clock=lambda: review_by + 1,
        )
    assert control.calls == []
    assert handoff_rows(repo) == []


# --- CLI: validation order ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: --repo is required"),
        (
            ["--repo", "R", "--idempotency-prefix", ""],
            "error: --idempotency-prefix must be non-empty",
        ),
        (
            ["--repo", "R", "--timeout-seconds", "x"],
            "error: timeout and interval must be non-negative integers",
        ),
        (
            ["--repo", "R", "--interval-seconds", "-1"],
            "error: timeout and interval must be non-negative integers",
        ),
        (
            ["--repo", "R", "--execute", "--autonomous-execute"],
            "error: --execute and --autonomous-execute are mutually exclusive",
        ),
        (["--repo", "R", "--confirm"], "error: --confirm can only be used with --execute"),
        (
            ["--repo", "R", "--execute"],
            "error: --execute requires --confirm to enforce explicit operator confirmation",
        ),
        (["--repo", "R", "--loop", ""], "error: --loop requires a non-empty value"),
        (["--repo", "R", "--intent-id", ""], "error: --intent-id requires a non-empty value"),
        (
            ["--repo", "R"],
            "error: policy state file not found: R/.superloop/ops-manager/fleet/policy-state.json",
        ),
    ],
)
def test_cli_validation_order(
    args: list[str], message: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(repo) if a == "R" else a for a in args]
    assert main(["fleet-handoff", *argv]) == 1
    assert capsys.readouterr().err.strip() == message.replace("R/", f"{repo}/")


def test_cli_bad_json_inputs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(repo, [candidate("loop-a", "reconcile_failed")])
    paths = FleetPaths.for_repo(repo)
    paths.handoff_state_file.write_text("{nope")
    assert main(["fleet-handoff", "--repo", str(repo)]) == 1
    assert (
        f"error: invalid existing handoff state JSON: {paths.handoff_state_file}"
        in capsys.readouterr().err
    )
    paths.policy_state_file.write_text("[1,")
    assert main(["fleet-handoff", "--repo", str(repo)]) == 1
    assert f"error: invalid policy state JSON: {paths.policy_state_file}" in capsys.readouterr().err
    # upstream order: the handoff state is parsed before the mode is checked
    paths.policy_state_file.write_text(json.dumps({"mode": "yolo", "candidates": []}))
    assert main(["fleet-handoff", "--repo", str(repo), "--autonomous-execute"]) == 1
    assert "invalid existing handoff state JSON" in capsys.readouterr().err
    paths.handoff_state_file.unlink()
    assert main(["fleet-handoff", "--repo", str(repo)]) == 1
    assert "error: unsupported policy mode: yolo" in capsys.readouterr().err


def test_cli_pretty_and_custom_paths(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(repo, [candidate("loop-a", "reconcile_failed")])
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "fleet-handoff",
            "--repo",
            str(repo),
            "--handoff-state-file",
            "out/h.json",
            "--handoff-telemetry-file",
            "out/h.jsonl",
            "--idempotency-prefix",
            "My Prefix",
            "--trace-id",
            "Trace X/1",
            "--pretty",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n  "schemaVersion": "v1",')
    state = json.loads(out)
    assert (
        state["intents"][0]["idempotencyKey"]
        == "my-prefix-trace-x-1-loop-a-reconcile_failed-cancel"
    )
    assert json.loads((tmp_path / "out/h.json").read_text()) == state
    assert (tmp_path / "out/h.json").read_text().count("\n") == 1  # files stay compact
    assert len((tmp_path / "out/h.jsonl").read_text().splitlines()) == 1


# --- CLI with the real control and the stub Superloop CLI -----------------------------------


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    log = tmp_path / "stub-calls.jsonl"
    for key, value in stub_superloop_env(tmp_path / "bin", log).items():
        monkeypatch.setenv(key, value)
    yield log


def test_trace_and_idempotency_reach_the_loop_control_records(
    repo: Path, stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-HO-4 through the real loop-level control; a repeated run replays (no 2nd call)."""
    make_runtime_repo(repo, "loop-red", active=True)
    seed(repo, [candidate("loop-red", "reconcile_failed")])
    argv = [
        "fleet-handoff",
        "--repo",
        str(repo),
        "--execute",
        "--confirm",
        "--by",
        "operator-a",
        "--note",
        "manual_action",
        "--trace-id",
        "trace-fleet-handoff-exec-1",
        "--timeout-seconds",
        "0",
    ]
    assert main(argv) == 0
    state = json.loads(capsys.readouterr().out)
    result = state["execution"]["results"][0]
    assert state["summary"]["executedCount"] == 1
    assert state["intents"][0]["status"] == "executed"
    assert result["traceId"] == "trace-fleet-handoff-exec-1"
    assert result["control"]["status"] == "confirmed"
    control_rows = [
        json.loads(line)
        for line in LoopPaths.for_loop(repo, "loop-red")
        .control_telemetry_file.read_text()
        .splitlines()
    ]
    assert control_rows[-1]["traceId"] == result["traceId"]
    assert control_rows[-1]["idempotencyKey"] == result["idempotencyKey"]
    entry = json.loads(
        LoopPaths.for_loop(repo, "loop-red").intents_file.read_text().splitlines()[-1]
    )
    assert entry["note"] == "manual_action | fleet_handoff:manual:loop-red:reconcile_failed:cancel"
    assert entry["requestedBy"] == "operator-a"
    assert len(stub_calls(stub)) == 1
    # the same confirmation again: same key -> the control replays, nothing executes
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["execution"]["results"][0]["status"] == "executed"
    assert again["execution"]["results"][0]["idempotencyKey"] == result["idempotencyKey"]
    assert len(stub_calls(stub)) == 1


# --- fleet-status sections from the handoff artifacts (§2.4; for issue 7 item 3) -------------


def sta_handoff_state() -> dict[str, Any]:
    """R-STA-1/2-like: autonomous run, local executed + sprite failed, one pending manual-only."""
    return {
        "schemaVersion": "v1",
        "updatedAt": "2026-02-22T18:05:00Z",
        "fleetId": "fleet-h",
        "traceId": "trace-h",
        "mode": "guarded_auto",
        "intents": [
            {
                "intentId": "loop-a:reconcile_failed:cancel",
                "transport": "local",
                "status": "executed",
                "autonomous": {"eligible": True, "manualOnly": False, "reasons": []},
            },
            {
                "intentId": "loop-s:reconcile_failed:cancel",
                "transport": "sprite_service",
                "status": "execution_failed",
                "autonomous": {"eligible": True, "manualOnly": False, "reasons": []},
            },
            {
                "intentId": "loop-m:health_degraded:cancel",
                "transport": "local",
                "status": "pending_operator_confirmation",
                "autonomous": {
                    "eligible": False,
                    "manualOnly": True,
                    "reasons": ["category_not_allowlisted"],
                },
            },
        ],
        "summary": {
            "candidateCount": 3,
            "unsuppressedCandidateCount": 3,
            "intentCount": 3,
            "autoEligibleIntentCount": 2,
            "manualOnlyIntentCount": 1,
            "pendingConfirmationCount": 1,
            "executedCount": 1,
            "ambiguousCount": 0,
            "failedCount": 1,
        },
        "reasonCodes": ["fleet_handoff_executed", "fleet_handoff_execution_failed"],
        "execution": {
            "mode": "autonomous",
            "requestedBy": "ops-bot",
            "requestedAt": "2026-02-22T18:04:00Z",
            "completedAt": "2026-02-22T18:05:00Z",
            "note": None,
            "requestedIntentCount": 2,
            "executedIntentCount": 2,
            "executedCount": 1,
            "ambiguousCount": 0,
            "failedCount": 1,
            "results": [
                {
                    "intentId": "loop-a:reconcile_failed:cancel",
                    "status": "executed",
                    "reasonCode": "control_confirmed",
                },
                {
                    "intentId": "loop-s:reconcile_failed:cancel",
                    "status": "failed",
                    "reasonCode": "control_failed_command",
                },
            ],
        },
    }


def test_status_handoff_sections() -> None:
    state = sta_handoff_state()
    section = rh.status_handoff_section(state, None)
    assert section is not None
    assert list(section) == [
        "mode",
        "reasonCodes",
        "summary",
        "execution",
        "byAutonomyReason",
        "pendingManualOnlyCount",
        "traceId",
        "updatedAt",
    ]
    rollup = {"attempted": 2, "executed": 1, "ambiguous": 0, "failed": 1, "manual_backlog": 1}
    assert section["summary"] == {
        "intentCount": 3,
        "autoEligibleIntentCount": 2,
        "manualOnlyIntentCount": 1,
        "pendingConfirmationCount": 1,
        "executedCount": 1,
        "ambiguousCount": 0,
        "failedCount": 1,
        "autonomousOutcomeRollup": rollup,
    }
    assert section["execution"] == {
        "mode": "autonomous",
        "requestedBy": "ops-bot",
        "requestedAt": "2026-02-22T18:04:00Z",
        "completedAt": "2026-02-22T18:05:00Z",
        "requestedIntentCount": 2,
        "executedIntentCount": 2,
        "executedCount": 1,
        "ambiguousCount": 0,
        "failedCount": 1,
        "byReasonCode": {"control_confirmed": 1, "control_failed_command": 1},
    }
    assert section["byAutonomyReason"] == {"category_not_allowlisted": 1}
    assert section["pendingManualOnlyCount"] == 1
    auto = rh.status_autonomous_handoff(state, None)
    assert auto == {
        "autoEligibleIntentCount": 2,
        "manualOnlyIntentCount": 1,
        "pendingManualOnlyCount": 1,
        "executionMode": "autonomous",
        "executedCount": 1,
        "ambiguousCount": 0,
        "failedCount": 1,
        "outcomeRollup": rollup,
        "outcomeReasonCodes": {"control_confirmed": 1, "control_failed_command": 1},
    }
    assert rh.transport_gate_reason_counts(state) == {"control_failed_command": 1}
    assert rh.status_handoff_section(None, {}) is None
    assert rh.status_autonomous_handoff(None, {}) is None
    # a plan-only state: execution has only the zero counters and an empty byReasonCode
    plan = {k: v for k, v in state.items() if k != "execution"}
    plan_section = rh.status_handoff_section(plan, None)
    assert plan_section is not None
    assert plan_section["execution"] == {
        "requestedIntentCount": 0,
        "executedIntentCount": 0,
        "executedCount": 0,
        "ambiguousCount": 0,
        "failedCount": 0,
        "byReasonCode": {},
    }
    assert "executionMode" not in (rh.status_autonomous_handoff(plan, None) or {})


def test_status_latest_handoff_telemetry() -> None:
    state = sta_handoff_state()
    rollup = rh.outcome_rollup(state, None)
    execute = rh.execute_telemetry_row(state)
    execute["summary"]["summary"]["pendingManualOnlyCount"] = 7
    latest = rh.status_latest_handoff_telemetry(execute, rollup)
    assert latest is not None
    assert list(latest) == [
        "timestamp",
        "category",
        "traceId",
        "execution",
        "summary",
        "autonomousOutcomeRollup",
        "reasonCodes",
    ]
    assert latest["execution"] == {
        "mode": "autonomous",
        "requestedIntentCount": 2,
        "executedCount": 1,
        "ambiguousCount": 0,
        "failedCount": 1,
    }
    assert latest["autonomousOutcomeRollup"] == {
        "attempted": 2,
        "executed": 1,
        "ambiguous": 0,
        "failed": 1,
        "manual_backlog": 7,
    }
    assert "fleet_handoff_executed" in latest["reasonCodes"]
    plan_row = {
        "timestamp": "T",
        "category": "fleet_handoff_plan",
        "fleetId": "f",
        "traceId": "t",
        "mode": "guarded_auto",
        "summary": {"summary": {"intentCount": 1}, "reasonCodes": ["x"], "policyTraceId": "p"},
    }
    latest_plan = rh.status_latest_handoff_telemetry(plan_row, rollup)
    assert latest_plan is not None
    assert latest_plan["execution"] == {}
    assert latest_plan["autonomousOutcomeRollup"] == {
        "attempted": 0,
        "executed": 0,
        "ambiguous": 0,
        "failed": 0,
        "manual_backlog": 1,
    }
    assert rh.status_latest_handoff_telemetry(None, rollup) is None


def test_concurrent_autonomous_runs_execute_each_intent_once(repo: Path, tmp_path: Path) -> None:
    """Two handoff processes at once (a cron overlap): the run lock serializes them and the
    second replays the first one's key, so the runtime sees one cancel per intent."""
    import os
    import subprocess
    import sys

    make_runtime_repo(repo, "loop-red", active=True)
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, **stub_superloop_env(tmp_path / "bin", log, delay=0.5)}
    cli = Path(sys.executable).parent / "ops-manager"
    argv = [str(cli), "fleet-handoff", "--repo", str(repo), "--autonomous-execute"]
    argv += ["--timeout-seconds", "0"]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    states = [json.loads(out) for out, _ in outputs]
    assert len(stub_calls(log)) == 1
    keys = {s["execution"]["results"][0]["idempotencyKey"] for s in states}
    assert len(keys) == 1
    assert sorted(s["execution"]["results"][0]["status"] for s in states) == [
        "executed",
        "executed",
    ]
    rows = handoff_rows(repo)
    assert [r["category"] for r in rows] == [
        "fleet_handoff_plan",
        "fleet_handoff_execute",
        "fleet_handoff_plan",
        "fleet_handoff_execute",
    ]


def test_plan_control_call_carries_service_timeout() -> None:
    """Registry ``service.timeoutSeconds`` reaches the control call (absent = defaults)."""
    reg = normalized(["loop-a"])
    intent = plan_for([candidate("loop-a", "health_critical", eligible=True)], reg=reg)["intents"][
        0
    ]
    assert "timeoutSeconds" not in intent["service"]
    plain = rh.plan_control_call(
        intent, mode="manual", trace_id="t", prefix="p", note=None, attempts={}
    )
    assert plain.timeout_seconds is None
    timed = dict(
        intent,
        transport="sprite_service",
        service={"baseUrl": "http://s", "retryAttempts": 3, "timeoutSeconds": 12},
    )
    call = rh.plan_control_call(
        timed, mode="manual", trace_id="t", prefix="p", note=None, attempts={}
    )
    assert call.timeout_seconds == 12.0
