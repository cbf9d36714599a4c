"""fleet-status autonomy fields: policy, handoff, governance, safety gates, rollout, outcomes.

``fleet.md`` §2.4 (the ``policy``, ``handoff``, ``autonomous`` and ``latestHandoffTelemetry``
sections, ``traceLinkage.policyTraceId``, the three new flags and files), §4.4 (posture and
suppression codes), §5.2 R-POL-1 / R-STA-1 / R-STA-2, §6.15 / §6.24, Appendix A.5 (and A.6,
which promotion-gates derives from this status) byte for byte with an injected now.

Governance deadlines are relative to the injected (or real) now (DECISIONS 6.17). The
end-to-end tests run the real commands in process through :func:`ops_manager.cli.main`
(fleet-reconcile -> fleet-policy -> fleet-handoff -> fleet-status) with the stub Superloop CLI.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact, dumps_pretty
from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.fleet_policy import fleet_policy
from ops_manager.engine.fleet_status import FleetStatusFiles, fleet_status
from ops_manager.engine.promotion import PromotionSettings, promotion_gates
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_policy import GATING_REASONS, SAFETY_REASONS
from ops_manager.reducers.fleet_rollout import ROLLOUT_REASONS
from ops_manager.reducers.fleet_status import (
    BLOCKED_COUNT_REASONS,
    POLICY_GATE_REASONS,
    ROLLOUT_GATE_REASONS,
    STATUS_KEY_ORDER,
    build_fleet_status,
    rollout_view,
    safety_gate_decisions,
)
from ops_manager.store import FleetPaths
from tests.fleet_fixtures import (
    DAY,
    TOKEN_ENV,
    governance,
    guarded_auto_policy,
    loop_entry,
    loop_result,
    make_fleet_repo,
    registry_doc,
    seed_fleet,
    sprite_loop,
    write_fleet_state,
    write_registry,
)
from tests.service_process import stub_calls, stub_superloop_env
from tests.test_fleet_status import a5_state

#: Appendix A.5's "now"
NOW = parse_ts("2026-11-22T02:34:33Z") or 0
ROLLUP_KEYS = ["attempted", "executed", "ambiguous", "failed", "manual_backlog"]
AUTONOMOUS_KEYS = [
    "mode",
    "enabled",
    "policyReasonCodes",
    "handoffReasonCodes",
    "eligibleCandidateCount",
    "manualOnlyCandidateCount",
    "outcomeRollup",
    "governance",
    "safetyGateDecisions",
    "rollout",
    "handoff",
]
PATHS = ["policyGated", "rolloutGated", "governanceGated", "transportGated"]
ALL_SUPPRESSION_CODES = [
    "autonomous_suppression_governance_gated",
    "autonomous_suppression_policy_gated",
    "autonomous_suppression_rollout_gated",
    "autonomous_suppression_transport_gated",
]


# --- hand-written artifacts (the shapes fleet-policy / fleet-handoff write) -----------------


def pause_block(
    *,
    manual: bool = False,
    auto_active: bool = False,
    auto_reasons: tuple[str, ...] = (),
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``autonomous.rollout.pause`` as policy-state carries it."""
    reasons = []
    if manual:
        reasons.append("autonomous_rollout_paused_manual")
    if auto_active:
        reasons.append("autonomous_rollout_paused_auto")
    return {
        "active": bool(reasons),
        "reasons": sorted(reasons),
        "manual": manual,
        "auto": {
            "enabled": True,
            "active": auto_active,
            "reasons": list(auto_reasons),
            "lookbackExecutions": 5,
            "minSampleSize": 3,
            "ambiguityRateThreshold": 0.4,
            "failureRateThreshold": 0.4,
            "metrics": dict(
                metrics
                or {
                    "windowExecutionCount": 0,
                    "attemptedCount": 0,
                    "executedCount": 0,
                    "ambiguousCount": 0,
                    "failedCount": 0,
                    "ambiguityRate": 0,
                    "failureRate": 0,
                }
            ),
        },
    }


def candidate(
    loop_id: str,
    category: str,
    *,
    severity: str = "critical",
    suppressed: bool = False,
    eligible: bool = False,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A policy candidate with the fields status and handoff read."""
    return {
        "loopId": loop_id,
        "category": category,
        "candidateId": f"{loop_id}:{category}",
        "severity": severity,
        "confidence": "high",
        "recommendedIntent": "cancel",
        "suppressed": suppressed,
        "autonomous": {"eligible": eligible, "manualOnly": not eligible, "reasons": list(reasons)},
    }


def policy_state(
    *,
    mode: str = "guarded_auto",
    gov: Mapping[str, Any] | None = None,
    by_reason: Mapping[str, int] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    counts: tuple[int, int, int, int, int] | None = None,
    kill_switch: bool = False,
    pause: Mapping[str, Any] | None = None,
    trace_id: str = "trace-policy-1",
    reason_codes: tuple[str, ...] = ("fleet_action_required",),
) -> dict[str, Any]:
    """A policy state; ``counts`` = (candidate, unsuppressed, suppressed, autoEligible,
    manualOnly), else counted from ``candidates``."""
    cands = list(candidates or [])
    if counts is None:
        unsuppressed = [c for c in cands if not c["suppressed"]]
        counts = (
            len(cands),
            len(unsuppressed),
            len(cands) - len(unsuppressed),
            sum(1 for c in unsuppressed if c["autonomous"]["eligible"]),
            sum(1 for c in unsuppressed if not c["autonomous"]["eligible"]),
        )
    governance_block = dict(gov) if gov is not None else {"authorityContextPresent": True}
    governance_block.setdefault("requiredForGuardedAuto", True)
    return {
        "schemaVersion": "v1",
        "updatedAt": "2026-11-22T02:30:00Z",
        "fleetId": "fleet-x",
        "traceId": trace_id,
        "mode": mode,
        "autonomous": {
            "enabled": mode == "guarded_auto",
            "governance": governance_block,
            "controls": {"safety": {"killSwitch": kill_switch}},
            "rollout": {
                "canaryPercent": 100,
                "scopeLoopIds": [],
                "selectorSalt": "fleet-autonomous-rollout-v1",
                "candidateBuckets": {
                    "inScopeCount": len(cands),
                    "inCohortCount": len(cands),
                    "outOfCohortCount": 0,
                },
                "pause": dict(pause or pause_block()),
            },
        },
        "candidateCount": counts[0],
        "unsuppressedCount": counts[1],
        "suppressedCount": counts[2],
        "autoEligibleCount": counts[3],
        "manualOnlyCount": counts[4],
        "candidates": cands,
        "summary": {"byAutonomyReason": dict(by_reason or {})},
        "reasonCodes": list(reason_codes),
    }


def governance_block(now: int, *, review_in: int | None, authority: bool | None = True) -> dict:
    """policy-state ``autonomous.governance``; ``review_in`` seconds from ``now`` (None =
    no reviewBy); ``authority`` None leaves ``authorityContextPresent`` out."""
    block: dict[str, Any] = {
        "actor": "ops-user",
        "approvalRef": "CAB-123",
        "rationale": "guarded rollout expansion",
        "changedAt": format_ts(now - DAY),
    }
    if review_in is not None:
        block["reviewBy"] = format_ts(now + review_in)
    block["reviewWindowDays"] = 90
    block["requiredForGuardedAuto"] = True
    if authority is not None:
        block["authorityContextPresent"] = authority
    return block


def intent_row(
    loop_id: str,
    status: str,
    *,
    transport: str = "local",
    manual_only: bool = False,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "intentId": f"{loop_id}:health_critical:cancel",
        "loopId": loop_id,
        "status": status,
        "autonomous": {
            "eligible": not manual_only,
            "manualOnly": manual_only,
            "reasons": list(reasons),
        },
        "transport": transport,
    }


def result_row(loop_id: str, status: str, reason: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "intentId": f"{loop_id}:health_critical:cancel",
        "loopId": loop_id,
        "status": status,
        "executionMode": "autonomous",
    }
    if reason is not None:
        row["reasonCode"] = reason
    return row


def handoff_state(
    intents: list[dict[str, Any]],
    results: list[dict[str, Any]] | None = None,
    *,
    mode: str = "guarded_auto",
    execution_mode: str = "autonomous",
    reason_codes: tuple[str, ...] = ("fleet_handoff_action_required",),
) -> dict[str, Any]:
    """A handoff state; with ``results`` it carries an execution of ``execution_mode``."""
    counts = {
        "executedCount": sum(1 for i in intents if i["status"] == "executed"),
        "ambiguousCount": sum(1 for i in intents if i["status"] == "execution_ambiguous"),
        "failedCount": sum(1 for i in intents if i["status"] == "execution_failed"),
    }
    state: dict[str, Any] = {
        "schemaVersion": "v1",
        "updatedAt": "2026-11-22T02:31:00Z",
        "traceId": "trace-handoff-1",
        "mode": mode,
        "intents": intents,
        "summary": {
            "intentCount": len(intents),
            "autoEligibleIntentCount": sum(1 for i in intents if i["autonomous"]["eligible"]),
            "manualOnlyIntentCount": sum(1 for i in intents if i["autonomous"]["manualOnly"]),
            "pendingConfirmationCount": sum(
                1 for i in intents if i["status"] == "pending_operator_confirmation"
            ),
            **counts,
        },
        "reasonCodes": list(reason_codes),
    }
    if results is not None:
        by_status = {
            s: sum(1 for r in results if r["status"] == s)
            for s in ("executed", "ambiguous", "failed")
        }
        state["execution"] = {
            "mode": execution_mode,
            "requestedBy": "ops-bot",
            "requestedAt": "2026-11-22T02:30:58Z",
            "completedAt": "2026-11-22T02:31:00Z",
            "note": None,
            "requestedIntentCount": len(results),
            "executedIntentCount": len(results),
            "executedCount": by_status["executed"],
            "ambiguousCount": by_status["ambiguous"],
            "failedCount": by_status["failed"],
            "results": results,
        }
    return state


def execute_row(state: Mapping[str, Any], **summary_extra: Any) -> dict[str, Any]:
    """The ``fleet_handoff_execute`` telemetry row of ``state``."""
    return {
        "timestamp": state["execution"]["completedAt"],
        "category": "fleet_handoff_execute",
        "fleetId": "fleet-x",
        "traceId": state["traceId"],
        "execution": state["execution"],
        "summary": {
            "summary": {**state["summary"], **summary_extra},
            "reasonCodes": state["reasonCodes"],
        },
    }


FLEET = {"results": [{"loopId": "loop-a", "status": "success", "traceId": "t-a"}]}


def status_of(
    p: Mapping[str, Any] | None = None,
    h: Mapping[str, Any] | None = None,
    lh: Mapping[str, Any] | None = None,
    *,
    now: int = NOW,
) -> dict[str, Any]:
    """The pure status document over a one-loop fleet."""
    return build_fleet_status(
        {"fleetId": "f"},
        FLEET,
        now=now,
        repo_path="/r",
        files={},
        policy_state=p,
        handoff_state=h,
        latest_handoff_telemetry=lh,
    )


# =============================================================================================
# Appendix A: byte for byte, with the real fleet-policy behind it
# =============================================================================================
def a5_repo(root: Path) -> Path:
    """R-POL-1 / A.5: advisory, suppressions ``loop-red:[reconcile_failed]`` and
    ``*:[health_degraded]``, two policy runs 10 s apart (the second fully suppressed)."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    suppressions = {"loop-red": ["reconcile_failed"], "*": ["health_degraded"]}
    write_registry(
        repo,
        registry_doc(
            ["loop-red", "loop-blue"], policy={"mode": "advisory", "suppressions": suppressions}
        ),
    )
    write_fleet_state(repo, a5_state(repo))
    first = parse_ts("2026-11-22T02:18:15Z") or 0
    for at in (first, first + 10):
        fleet_policy(repo, trace_id="trace-fleet-policy-1", now=at, env={})
    return repo


def test_appendix_a5_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = a5_repo(tmp_path)
    doc = fleet_status(repo, now=NOW)
    assert dumps_compact(doc).replace(str(repo), "/abs/repo") == A5_STATUS
    assert list(doc) == list(STATUS_KEY_ORDER)
    # the CLI prints the same document (its clock differs only in generatedAt)
    assert main(["fleet-status", "--repo", str(repo), "--pretty"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    printed["generatedAt"] = doc["generatedAt"]
    assert printed == doc and out == dumps_pretty(json.loads(out)) + "\n"


def test_appendix_a6_promotion_over_the_generated_status(tmp_path: Path) -> None:
    """A.6: promotion-gates over this status: no 'unavailable'/'paths missing' reasons."""
    repo = a5_repo(tmp_path)
    at = parse_ts("2026-11-22T02:19:52Z") or 0
    result = promotion_gates(
        PromotionSettings(repo=repo, trace_id="tr-1"), clock=lambda: at, env={}
    )
    assert dumps_compact(result.document).replace(str(repo), "/abs/repo") == A6_GATES


# =============================================================================================
# presence: null sections, key order
# =============================================================================================
@pytest.mark.parametrize(
    ("with_p", "with_h", "with_lh"),
    [(p, h, lh) for p in (False, True) for h in (False, True) for lh in (False, True)],
)
def test_sections_present_or_null(with_p: bool, with_h: bool, with_lh: bool) -> None:
    p = policy_state() if with_p else None
    h = (
        handoff_state(
            [intent_row("loop-a", "executed")],
            [result_row("loop-a", "executed", "control_confirmed")],
        )
        if with_h
        else None
    )
    lh = (
        execute_row(h)
        if (with_lh and h)
        else ({"category": "fleet_handoff_plan"} if with_lh else None)
    )
    doc = status_of(p, h, lh)
    assert list(doc) == list(STATUS_KEY_ORDER)
    assert (doc["policy"] is None) is not with_p
    assert (doc["handoff"] is None) is not with_h
    assert (doc["autonomous"] is None) is (not with_p and not with_h)
    assert (doc["latestHandoffTelemetry"] is None) is not with_lh
    assert doc["traceLinkage"]["policyTraceId"] == ("trace-policy-1" if with_p else None)
    assert list(doc["traceLinkage"]) == [
        "fleetTraceId",
        "policyTraceId",
        "loopTraceIds",
        "sharedTraceId",
    ]
    auto = doc["autonomous"]
    if auto is not None:
        want = [
            k
            for k in AUTONOMOUS_KEYS
            if not (k in ("governance", "rollout") and not with_p)
            and not (k == "handoff" and not with_h)
        ]
        assert list(auto) == want
        assert list(auto["outcomeRollup"]) == ROLLUP_KEYS
        assert list(auto["safetyGateDecisions"]) == [
            "byReason",
            "byPath",
            "suppressionReasonCodes",
            "blockedCount",
            "killSwitchActive",
        ]
        assert list(auto["safetyGateDecisions"]["byPath"]) == PATHS
        # mode from P, else from H
        assert auto["mode"] == "guarded_auto" and auto["enabled"] is True


def test_mode_falls_back_to_handoff_then_advisory() -> None:
    h = handoff_state([], mode="guarded_auto")
    assert status_of(None, h)["autonomous"]["mode"] == "guarded_auto"
    assert status_of(policy_state(mode="advisory"), h)["autonomous"]["enabled"] is False
    del h["mode"]
    auto = status_of(None, h)["autonomous"]
    assert (auto["mode"], auto["enabled"]) == ("advisory", False)
    assert (auto["policyReasonCodes"], auto["eligibleCandidateCount"]) == ([], 0)


def test_policy_section_and_top_candidates() -> None:
    """Stable sort by severity rank (critical, warning, other), first five, suppressed kept."""
    cands = [
        candidate("a", "health_degraded", severity="warning", suppressed=True),
        candidate("b", "health_critical"),
        candidate("c", "odd", severity="info"),
        candidate("d", "health_degraded", severity="warning"),
        candidate("e", "reconcile_failed"),
        candidate("f", "x", severity="weird"),
        candidate("g", "health_critical", suppressed=True),
    ]
    p = policy_state(candidates=cands)
    section = status_of(p)["policy"]
    assert list(section) == [
        "mode",
        "candidateCount",
        "unsuppressedCount",
        "suppressedCount",
        "reasonCodes",
        "topCandidates",
        "traceId",
        "updatedAt",
    ]
    assert [c["loopId"] for c in section["topCandidates"]] == ["b", "e", "g", "a", "d"]
    assert section["topCandidates"][0] == cands[1]
    assert (section["candidateCount"], section["unsuppressedCount"]) == (7, 5)
    assert section["suppressedCount"] == 2
    # a hand-written state without counts, mode, trace: counted, defaulted, dropped
    for key in ("candidateCount", "unsuppressedCount", "suppressedCount", "mode", "traceId"):
        del p[key]
    p["candidates"].append("not a candidate")
    bare = status_of(p)["policy"]
    assert (bare["mode"], bare["candidateCount"], bare["unsuppressedCount"]) == ("advisory", 7, 5)
    assert "traceId" not in bare and len(bare["topCandidates"]) == 5


def test_candidate_counts_fall_back_to_the_candidates() -> None:
    cands = [
        candidate("a", "health_critical", eligible=True),
        candidate("b", "health_critical", reasons=("category_not_allowlisted",)),
        candidate("c", "health_critical", suppressed=True),
    ]
    p = policy_state(candidates=cands, counts=(9, 9, 9, 7, 8))
    auto = status_of(p)["autonomous"]
    assert (auto["eligibleCandidateCount"], auto["manualOnlyCandidateCount"]) == (7, 8)
    del p["autoEligibleCount"], p["manualOnlyCount"]
    auto = status_of(p)["autonomous"]
    assert (auto["eligibleCandidateCount"], auto["manualOnlyCandidateCount"]) == (1, 1)


# =============================================================================================
# decision table: governance posture in status (relative to now)
# =============================================================================================
SOON = 7 * DAY
GOVERNANCE_TABLE: list[tuple[str, str, dict[str, Any] | None, str, list[str]]] = [
    # id, mode, governance block (review offset from now), posture, reason codes
    ("advisory", "advisory", None, "not_required", []),
    (
        "advisory-even-if-expired",
        "advisory",
        {"review_in": -DAY, "authority": False},
        "not_required",
        [],
    ),
    ("active", "guarded_auto", {"review_in": 90 * DAY}, "active", []),
    (
        "due-soon-edge",
        "guarded_auto",
        {"review_in": SOON},
        "review_due_soon",
        ["autonomous_governance_review_due_soon"],
    ),
    ("just-outside-due-soon", "guarded_auto", {"review_in": SOON + 1}, "active", []),
    (
        "expired-at-now",
        "guarded_auto",
        {"review_in": 0},
        "review_expired",
        ["autonomous_governance_review_expired"],
    ),
    (
        "expired",
        "guarded_auto",
        {"review_in": -1},
        "review_expired",
        ["autonomous_governance_review_expired"],
    ),
    (
        "deadline-missing",
        "guarded_auto",
        {"review_in": None},
        "review_deadline_missing",
        ["autonomous_governance_review_deadline_missing"],
    ),
    (
        "authority-flag-false",
        "guarded_auto",
        {"review_in": 90 * DAY, "authority": False},
        "authority_missing",
        ["autonomous_governance_authority_missing"],
    ),
    (
        "authority-from-fields-incomplete",
        "guarded_auto",
        {"review_in": None, "authority": None},
        "authority_missing",
        [
            "autonomous_governance_authority_missing",
            "autonomous_governance_review_deadline_missing",
        ],
    ),
    (
        "authority-from-fields-complete",
        "guarded_auto",
        {"review_in": 30 * DAY, "authority": None},
        "active",
        [],
    ),
    (
        "authority-missing-and-expired",
        "guarded_auto",
        {"review_in": -DAY, "authority": False},
        "authority_missing",
        ["autonomous_governance_authority_missing", "autonomous_governance_review_expired"],
    ),
]


@pytest.mark.parametrize(
    ("mode", "gov", "posture", "codes"),
    [row[1:] for row in GOVERNANCE_TABLE],
    ids=[row[0] for row in GOVERNANCE_TABLE],
)
def test_governance_posture_table(
    mode: str, gov: dict[str, Any] | None, posture: str, codes: list[str]
) -> None:
    now = utc_now_epoch()
    block = governance_block(now, **gov) if gov is not None else None
    p = policy_state(
        mode=mode,
        gov=block,
        candidates=[candidate("a", "health_critical"), candidate("b", "health_critical")],
        counts=(3, 2, 1, 0, 2),
    )
    auto = status_of(p, now=now)["autonomous"]
    view = auto["governance"]
    assert (view["posture"], view["reasonCodes"]) == (posture, codes)
    blocks = bool(codes)
    assert view["blocksAutonomous"] is blocks
    gated = auto["safetyGateDecisions"]["byPath"]["governanceGated"]
    assert gated == {"blockedCount": 2 if blocks else 0, "reasonCodes": codes}
    assert (
        "autonomous_suppression_governance_gated"
        in auto["safetyGateDecisions"]["suppressionReasonCodes"]
    ) is blocks
    if block is not None:
        assert view["changedBy"] == "ops-user" and view["why"] == "guarded rollout expansion"
        assert view.get("until") == block.get("reviewBy")
    assert list(view)[-4:] == [
        "authorityContextPresent",
        "posture",
        "reasonCodes",
        "blocksAutonomous",
    ]


def test_governance_view_drops_missing_fields() -> None:
    view = status_of(policy_state(mode="advisory"))["autonomous"]["governance"]
    assert view == {
        "authorityContextPresent": True,
        "posture": "not_required",
        "reasonCodes": [],
        "blocksAutonomous": False,
    }


# =============================================================================================
# decision table: safety-gate paths
# =============================================================================================
def test_gate_reason_families_are_the_spec_lists() -> None:
    assert (
        POLICY_GATE_REASONS
        == {
            "policy_mode_not_guarded_auto",
            "candidate_suppressed",
            "category_not_allowlisted",
            "intent_not_allowlisted",
            "no_recommended_intent",
            "severity_below_threshold",
            "confidence_below_threshold",
            "autonomous_kill_switch_enabled",
            "autonomous_cooldown_active",
            "autonomous_max_actions_per_run_exceeded",
            "autonomous_max_actions_per_loop_exceeded",
        }
        == set(GATING_REASONS) | set(SAFETY_REASONS)
    )
    assert (
        ROLLOUT_GATE_REASONS
        == {
            "autonomous_rollout_scope_excluded",
            "autonomous_rollout_canary_excluded",
            "autonomous_rollout_paused_manual",
            "autonomous_rollout_paused_auto",
            "autonomous_autopause_ambiguous_spike",
            "autonomous_autopause_failure_spike",
        }
        == set(ROLLOUT_REASONS)
    )
    assert ROLLOUT_GATE_REASONS | set(SAFETY_REASONS) == BLOCKED_COUNT_REASONS


PATH_TABLE: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], list[str], int]] = [
    # id, PAR, policyGated.byReason, rolloutGated.byReason, suppression paths, blockedCount
    ("nothing", {}, {}, {}, [], 0),
    (
        "advisory-only",
        {"policy_mode_not_guarded_auto": 2},
        {"policy_mode_not_guarded_auto": 2},
        {},
        ["policy"],
        0,
    ),
    (
        "kill-switch",
        {"autonomous_kill_switch_enabled": 3},
        {"autonomous_kill_switch_enabled": 3},
        {},
        ["policy"],
        3,
    ),
    (
        "rollout-keeps-par-order",
        {"autonomous_rollout_scope_excluded": 1, "autonomous_rollout_canary_excluded": 2},
        {},
        {"autonomous_rollout_scope_excluded": 1, "autonomous_rollout_canary_excluded": 2},
        ["rollout"],
        3,
    ),
    (
        "r-sta-2-five-reasons",
        {
            "autonomous_rollout_paused_auto": 1,
            "category_not_allowlisted": 1,
            "autonomous_autopause_failure_spike": 1,
            "autonomous_max_actions_per_run_exceeded": 1,
            "autonomous_rollout_canary_excluded": 1,
        },
        {"category_not_allowlisted": 1, "autonomous_max_actions_per_run_exceeded": 1},
        {
            "autonomous_rollout_paused_auto": 1,
            "autonomous_autopause_failure_spike": 1,
            "autonomous_rollout_canary_excluded": 1,
        },
        ["policy", "rollout"],
        4,
    ),
    (
        "all-rails",
        {
            "autonomous_cooldown_active": 1,
            "autonomous_max_actions_per_loop_exceeded": 2,
            "autonomous_rollout_paused_manual": 4,
        },
        {"autonomous_cooldown_active": 1, "autonomous_max_actions_per_loop_exceeded": 2},
        {"autonomous_rollout_paused_manual": 4},
        ["policy", "rollout"],
        7,
    ),
    ("unknown-reason-only-in-byReason", {"mystery": 5}, {}, {}, [], 0),
    (
        "non-numeric-counts-count-zero",
        {"candidate_suppressed": "x", "autonomous_rollout_paused_auto": True},
        {"candidate_suppressed": "x"},
        {"autonomous_rollout_paused_auto": True},
        [],
        0,
    ),
]


@pytest.mark.parametrize(
    ("par", "policy_gated", "rollout_gated", "paths", "blocked"),
    [row[1:] for row in PATH_TABLE],
    ids=[row[0] for row in PATH_TABLE],
)
def test_safety_gate_paths_table(
    par: dict[str, Any],
    policy_gated: dict[str, Any],
    rollout_gated: dict[str, Any],
    paths: list[str],
    blocked: int,
) -> None:
    decisions = safety_gate_decisions(policy_state(by_reason=par), None)
    assert decisions["byReason"] == par
    by_path = decisions["byPath"]
    assert by_path["policyGated"]["byReason"] == policy_gated
    assert list(by_path["policyGated"]["byReason"]) == list(policy_gated)  # PAR's order
    assert by_path["rolloutGated"]["byReason"] == rollout_gated
    assert list(by_path["rolloutGated"]["byReason"]) == list(rollout_gated)
    assert decisions["suppressionReasonCodes"] == [
        f"autonomous_suppression_{p}_gated" for p in paths
    ]
    assert decisions["blockedCount"] == blocked
    assert by_path["governanceGated"] == {"blockedCount": 0, "reasonCodes": []}
    assert by_path["transportGated"] == {"blockedCount": 0, "byReason": {}}


TRANSPORT_TABLE: list[tuple[str, list[tuple[str, str, str, str | None]], dict[str, int]]] = [
    # id, [(loop, transport, result status, reasonCode)], transportGated.byReason
    ("local-failures-do-not-count", [("a", "local", "failed", "control_failed_command")], {}),
    (
        "sprite-failed-and-ambiguous",
        [
            ("a", "sprite_service", "failed", "control_failed_command"),
            ("b", "sprite_service", "ambiguous", "control_ambiguous"),
            ("c", "sprite_service", "executed", "control_confirmed"),
            ("d", "sprite_service", "failed", "control_failed_command"),
        ],
        {"control_failed_command": 2, "control_ambiguous": 1},
    ),
    (
        "no-reason-code",
        [("a", "sprite_service", "ambiguous", None)],
        {"transport_execution_blocked": 1},
    ),
]


@pytest.mark.parametrize(
    ("rows", "by_reason"),
    [row[1:] for row in TRANSPORT_TABLE],
    ids=[row[0] for row in TRANSPORT_TABLE],
)
def test_transport_gated_table(
    rows: list[tuple[str, str, str, str | None]], by_reason: dict[str, int]
) -> None:
    status_for = {
        "executed": "executed",
        "failed": "execution_failed",
        "ambiguous": "execution_ambiguous",
    }
    h = handoff_state(
        [intent_row(loop, status_for[st_], transport=t) for loop, t, st_, _ in rows],
        [result_row(loop, st_, reason) for loop, _, st_, reason in rows],
    )
    for with_policy in (None, policy_state()):
        decisions = status_of(with_policy, h)["autonomous"]["safetyGateDecisions"]
        gated = decisions["byPath"]["transportGated"]
        assert gated == {"blockedCount": sum(by_reason.values()), "byReason": by_reason}
        assert (
            "autonomous_suppression_transport_gated" in decisions["suppressionReasonCodes"]
        ) is bool(by_reason)


@pytest.mark.parametrize(
    ("p", "active"),
    [
        (None, False),
        (policy_state(kill_switch=False), False),
        (policy_state(kill_switch=True), True),
        (policy_state(mode="advisory", kill_switch=True), True),
        (
            {"mode": "guarded_auto", "autonomous": {"controls": {"safety": {"killSwitch": "yes"}}}},
            False,
        ),
    ],
)
def test_kill_switch_active(p: dict[str, Any] | None, active: bool) -> None:
    h = handoff_state([])
    assert status_of(p, h)["autonomous"]["safetyGateDecisions"]["killSwitchActive"] is active


# =============================================================================================
# rollout view
# =============================================================================================
def test_rollout_view_from_policy_rollout() -> None:
    metrics = {
        "windowExecutionCount": 2,
        "attemptedCount": 2,
        "executedCount": 0,
        "ambiguousCount": 0,
        "failedCount": 2,
        "ambiguityRate": 0,
        "failureRate": 1,
    }
    pause = pause_block(
        manual=True,
        auto_active=True,
        auto_reasons=("autonomous_autopause_failure_spike",),
        metrics=metrics,
    )
    view = rollout_view(policy_state(pause=pause, candidates=[candidate("a", "health_critical")]))
    auto = {
        "enabled": True,
        "active": True,
        "reasons": ["autonomous_autopause_failure_spike"],
        "lookbackExecutions": 5,
        "minSampleSize": 3,
        "ambiguityRateThreshold": 0.4,
        "failureRateThreshold": 0.4,
        "metrics": metrics,
    }
    assert view == {
        "canaryPercent": 100,
        "scopeLoopIds": [],
        "selectorSalt": "fleet-autonomous-rollout-v1",
        "candidateBuckets": {"inScopeCount": 1, "inCohortCount": 1, "outOfCohortCount": 0},
        "state": {
            "active": True,
            "manualPauseActive": True,
            "autoPauseActive": True,
            "reasonCodes": ["autonomous_rollout_paused_auto", "autonomous_rollout_paused_manual"],
        },
        "autopause": auto,
        "pause": {
            "active": True,
            "reasons": ["autonomous_rollout_paused_auto", "autonomous_rollout_paused_manual"],
            "manual": True,
            "auto": auto,
        },
    }
    assert list(view or {}) == [
        "canaryPercent",
        "scopeLoopIds",
        "selectorSalt",
        "candidateBuckets",
        "state",
        "autopause",
        "pause",
    ]


def test_rollout_view_defaults_for_a_bare_policy_state() -> None:
    """No rollout block: canaryPercent / selectorSalt dropped, thresholds kept as null,
    ``autoPause.enabled: false`` stays false (DECISIONS 6.1)."""
    assert rollout_view(None) is None
    view = rollout_view({"mode": "guarded_auto"})
    idle = {
        "enabled": True,
        "active": False,
        "reasons": [],
        "lookbackExecutions": None,
        "minSampleSize": None,
        "ambiguityRateThreshold": None,
        "failureRateThreshold": None,
        "metrics": {},
    }
    assert view == {
        "scopeLoopIds": [],
        "candidateBuckets": {"inScopeCount": 0, "inCohortCount": 0, "outOfCohortCount": 0},
        "state": {
            "active": False,
            "manualPauseActive": False,
            "autoPauseActive": False,
            "reasonCodes": [],
        },
        "autopause": idle,
        "pause": {"active": False, "reasons": [], "manual": False, "auto": idle},
    }
    off = rollout_view({"autonomous": {"rollout": {"pause": {"auto": {"enabled": False}}}}})
    assert off is not None and off["autopause"]["enabled"] is False


# =============================================================================================
# handoff section, outcome rollup, latest handoff telemetry
# =============================================================================================
def test_a4_handoff_state_without_policy_state() -> None:
    """The A.4 handoff state (autonomous: loop-ok executed, sprite loop-amb ambiguous)."""
    h = json.loads(A4_HANDOFF_STATE)
    doc = status_of(None, h)
    rollup = {"attempted": 2, "executed": 1, "ambiguous": 1, "failed": 0, "manual_backlog": 0}
    assert doc["handoff"] == {
        "mode": "guarded_auto",
        "reasonCodes": h["reasonCodes"],
        "summary": {
            "intentCount": 2,
            "autoEligibleIntentCount": 2,
            "manualOnlyIntentCount": 0,
            "pendingConfirmationCount": 0,
            "executedCount": 1,
            "ambiguousCount": 1,
            "failedCount": 0,
            "autonomousOutcomeRollup": rollup,
        },
        "execution": {
            "mode": "autonomous",
            "requestedBy": "ops-bot",
            "requestedAt": "2026-11-22T02:34:20Z",
            "completedAt": "2026-11-22T02:34:22Z",
            "requestedIntentCount": 2,
            "executedIntentCount": 2,
            "executedCount": 1,
            "ambiguousCount": 1,
            "failedCount": 0,
            "byReasonCode": {"control_ambiguous": 1, "control_confirmed": 1},
        },
        "byAutonomyReason": {},
        "pendingManualOnlyCount": 0,
        "traceId": "trace-h3",
        "updatedAt": "2026-11-22T02:34:22Z",
    }
    auto = doc["autonomous"]
    assert dumps_compact(auto) == dumps_compact(
        {
            "mode": "guarded_auto",
            "enabled": True,
            "policyReasonCodes": [],
            "handoffReasonCodes": h["reasonCodes"],
            "eligibleCandidateCount": 0,
            "manualOnlyCandidateCount": 0,
            "outcomeRollup": rollup,
            "safetyGateDecisions": {
                "byReason": {},
                "byPath": {
                    "policyGated": {"blockedCount": 0, "byReason": {}},
                    "rolloutGated": {"blockedCount": 0, "byReason": {}},
                    "governanceGated": {"blockedCount": 0, "reasonCodes": []},
                    "transportGated": {"blockedCount": 1, "byReason": {"control_ambiguous": 1}},
                },
                "suppressionReasonCodes": ["autonomous_suppression_transport_gated"],
                "blockedCount": 0,
                "killSwitchActive": False,
            },
            "handoff": {
                "autoEligibleIntentCount": 2,
                "manualOnlyIntentCount": 0,
                "pendingManualOnlyCount": 0,
                "executionMode": "autonomous",
                "executedCount": 1,
                "ambiguousCount": 1,
                "failedCount": 0,
                "outcomeRollup": rollup,
                "outcomeReasonCodes": {"control_ambiguous": 1, "control_confirmed": 1},
            },
        }
    )


def test_latest_handoff_telemetry_plan_row_and_backlog_fallback() -> None:
    """§6.24: after a plan-only run the last row has no execution: counters 0, backlog from
    the state; a row carrying ``pendingManualOnlyCount`` wins."""
    h = handoff_state(
        [
            intent_row("a", "pending_operator_confirmation", manual_only=True),
            intent_row("b", "pending_operator_confirmation", manual_only=True),
        ]
    )
    plan_row = {
        "timestamp": "2026-11-22T02:31:00Z",
        "category": "fleet_handoff_plan",
        "fleetId": "fleet-x",
        "traceId": "trace-handoff-1",
        "mode": "guarded_auto",
        "summary": {"summary": h["summary"], "reasonCodes": ["fleet_handoff_confirmation_pending"]},
    }
    latest = status_of(policy_state(), h, plan_row)["latestHandoffTelemetry"]
    assert latest == {
        "timestamp": "2026-11-22T02:31:00Z",
        "category": "fleet_handoff_plan",
        "traceId": "trace-handoff-1",
        "execution": {},
        "summary": {k: v for k, v in h["summary"].items()},
        "autonomousOutcomeRollup": {
            "attempted": 0,
            "executed": 0,
            "ambiguous": 0,
            "failed": 0,
            "manual_backlog": 2,
        },
        "reasonCodes": ["fleet_handoff_confirmation_pending"],
    }
    plan_row["summary"]["summary"] = {**h["summary"], "pendingManualOnlyCount": 7}
    latest = status_of(policy_state(), h, plan_row)["latestHandoffTelemetry"]
    assert latest["autonomousOutcomeRollup"]["manual_backlog"] == 7


def test_manual_execution_does_not_count_as_autonomous_outcomes() -> None:
    h = handoff_state(
        [intent_row("a", "executed")],
        [result_row("a", "executed", "control_confirmed")],
        execution_mode="manual",
    )
    doc = status_of(policy_state(counts=(1, 1, 0, 0, 4)), h, execute_row(h))
    zero = {"attempted": 0, "executed": 0, "ambiguous": 0, "failed": 0, "manual_backlog": 0}
    assert doc["autonomous"]["outcomeRollup"] == zero  # backlog from H (no pending intents)
    assert doc["handoff"]["execution"]["mode"] == "manual"
    assert doc["latestHandoffTelemetry"]["autonomousOutcomeRollup"] == zero
    # no handoff state: backlog = the policy's manual-only count
    assert status_of(policy_state(counts=(1, 1, 0, 0, 4)))["autonomous"]["outcomeRollup"] == {
        **zero,
        "manual_backlog": 4,
    }


# =============================================================================================
# R-STA-1 and R-STA-2 through the CLI (hand-written artifacts at the default paths)
# =============================================================================================
def seed_artifacts(
    repo: Path,
    p: Mapping[str, Any] | None,
    h: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]] = (),
) -> FleetPaths:
    seed_fleet(repo, [loop_result(repo, "loop-a"), loop_result(repo, "loop-b")])
    paths = FleetPaths.for_repo(repo)
    if p is not None:
        paths.policy_state_file.write_text(dumps_compact(p) + "\n")
    if h is not None:
        paths.handoff_state_file.write_text(dumps_compact(h) + "\n")
    if rows:
        paths.handoff_telemetry_file.parent.mkdir(parents=True, exist_ok=True)
        paths.handoff_telemetry_file.write_text("".join(dumps_compact(r) + "\n" for r in rows))
    return paths


def cli_status(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["fleet-status", "--repo", str(repo), *args])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return dict(json.loads(out))


def test_r_sta_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = utc_now_epoch()
    p = policy_state(
        gov=governance_block(now, review_in=90 * DAY),
        by_reason={"category_not_allowlisted": 1, "autonomous_max_actions_per_run_exceeded": 1},
        counts=(2, 2, 0, 1, 1),
    )
    h = handoff_state(
        [
            intent_row("loop-a", "executed"),
            intent_row(
                "loop-b",
                "pending_operator_confirmation",
                manual_only=True,
                reasons=("category_not_allowlisted",),
            ),
        ],
        [result_row("loop-a", "executed", "control_confirmed")],
        reason_codes=("fleet_handoff_executed", "fleet_handoff_confirmation_pending"),
    )
    seed_artifacts(tmp_path, p, h, [execute_row(h)])
    doc = cli_status(capsys, tmp_path)
    auto = doc["autonomous"]
    assert auto["enabled"] is True
    assert (auto["eligibleCandidateCount"], auto["manualOnlyCandidateCount"]) == (1, 1)
    assert auto["safetyGateDecisions"]["byReason"]["autonomous_max_actions_per_run_exceeded"] == 1
    assert doc["handoff"]["execution"]["mode"] == "autonomous"
    assert doc["handoff"]["pendingManualOnlyCount"] == 1
    assert doc["handoff"]["byAutonomyReason"] == {"category_not_allowlisted": 1}
    assert auto["handoff"]["pendingManualOnlyCount"] == 1
    assert auto["handoff"]["outcomeReasonCodes"]["control_confirmed"] == 1
    assert doc["latestHandoffTelemetry"]["execution"]["mode"] == "autonomous"
    assert "fleet_handoff_executed" in doc["latestHandoffTelemetry"]["reasonCodes"]
    assert auto["governance"]["posture"] == "active"
    assert doc["traceLinkage"]["policyTraceId"] == "trace-policy-1"


def test_r_sta_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = utc_now_epoch()
    gov = governance_block(now, review_in=40 * DAY, authority=False)
    pause = pause_block(auto_active=True, auto_reasons=("autonomous_autopause_failure_spike",))
    p = policy_state(
        gov=gov,
        pause=pause,
        by_reason={
            "category_not_allowlisted": 1,
            "autonomous_max_actions_per_run_exceeded": 1,
            "autonomous_rollout_paused_auto": 1,
            "autonomous_autopause_failure_spike": 1,
            "autonomous_rollout_canary_excluded": 1,
        },
        counts=(3, 3, 0, 0, 3),
    )
    h = handoff_state(
        [
            intent_row("loop-a", "executed"),
            intent_row("loop-b", "execution_failed", transport="sprite_service"),
            intent_row("loop-c", "pending_operator_confirmation", manual_only=True),
        ],
        [
            result_row("loop-a", "executed", "control_confirmed"),
            result_row("loop-b", "failed", "control_failed_command"),
        ],
    )
    seed_artifacts(tmp_path, p, h, [execute_row(h, pendingManualOnlyCount=1)])
    doc = cli_status(capsys, tmp_path)
    auto = doc["autonomous"]
    view = auto["governance"]
    assert (view["changedBy"], view["changedAt"], view["why"], view["until"]) == (
        "ops-user",
        gov["changedAt"],
        "guarded rollout expansion",
        gov["reviewBy"],
    )
    assert view["posture"] == "authority_missing"
    assert "autonomous_governance_authority_missing" in view["reasonCodes"]
    assert auto["rollout"]["state"]["autoPauseActive"] is True
    assert auto["rollout"]["autopause"]["active"] is True
    assert auto["outcomeRollup"] == {
        "attempted": 2,
        "executed": 1,
        "ambiguous": 0,
        "failed": 1,
        "manual_backlog": 1,
    }
    assert doc["handoff"]["summary"]["autonomousOutcomeRollup"]["manual_backlog"] == 1
    assert doc["latestHandoffTelemetry"]["autonomousOutcomeRollup"]["failed"] == 1
    by_path = auto["safetyGateDecisions"]["byPath"]
    assert [by_path[k]["blockedCount"] for k in PATHS] == [2, 3, 3, 1]
    assert by_path["transportGated"]["byReason"] == {"control_failed_command": 1}
    assert auto["safetyGateDecisions"]["suppressionReasonCodes"] == ALL_SUPPRESSION_CODES


# =============================================================================================
# errors, flags, files
# =============================================================================================
@pytest.mark.parametrize("what", ["policy", "handoff"])
@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        ("{", ""),
        ("", ""),
        ('{"a":NaN}', ""),
        ("[1]", " (the {what} state must be a JSON object)"),
        ('"x"', " (the {what} state must be a JSON object)"),
    ],
)
def test_invalid_state_files(tmp_path: Path, what: str, content: str, suffix: str) -> None:
    paths = seed_artifacts(tmp_path, None, None)
    target = paths.policy_state_file if what == "policy" else paths.handoff_state_file
    target.write_text(content)
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=NOW)
    assert info.value.message == f"invalid {what} state JSON: {target}{suffix.format(what=what)}"


def test_error_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fleet state JSON, then policy state, then handoff state; a directory is invalid too."""
    paths = seed_artifacts(tmp_path, None, None)
    paths.policy_state_file.write_text("{")
    paths.handoff_state_file.mkdir()
    paths.state_file.write_text("[")
    expect = [
        f"invalid fleet state JSON: {paths.state_file}",
        f"invalid policy state JSON: {paths.policy_state_file}",
        f"invalid handoff state JSON: {paths.handoff_state_file}",
    ]
    for message in expect:
        assert main(["fleet-status", "--repo", str(tmp_path)]) == 1
        assert capsys.readouterr().err == f"error: {message}\n"
        if message == expect[0]:
            write_fleet_state(tmp_path, {"results": []})
        elif message == expect[1]:
            paths.policy_state_file.write_text("{}")
    paths.handoff_state_file.rmdir()
    assert cli_status(capsys, tmp_path)["handoff"] is None


def test_handoff_telemetry_tail(tmp_path: Path) -> None:
    """Only the last complete line; blank / unparseable / non-object last line -> null."""
    h = handoff_state([intent_row("loop-a", "executed")], [result_row("loop-a", "executed", "x")])
    paths = seed_artifacts(tmp_path, None, h, [execute_row(h)])
    tel = paths.handoff_telemetry_file
    assert fleet_status(tmp_path, now=NOW)["latestHandoffTelemetry"]["category"] == (
        "fleet_handoff_execute"
    )
    with open(tel, "a") as handle:
        handle.write('{"category":"fleet_handoff_plan"')  # a write still in progress
    assert fleet_status(tmp_path, now=NOW)["latestHandoffTelemetry"]["category"] == (
        "fleet_handoff_execute"
    )
    for tail in ("not json\n", "[1]\n"):
        tel.write_text(dumps_compact(execute_row(h)) + "\n" + tail)
        assert fleet_status(tmp_path, now=NOW)["latestHandoffTelemetry"] is None
    tel.write_text("")
    assert fleet_status(tmp_path, now=NOW)["latestHandoffTelemetry"] is None


def test_new_flags_are_echoed_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    seed_artifacts(repo, None, None)
    p = policy_state(trace_id="trace-elsewhere")
    h = handoff_state([intent_row("loop-a", "executed")], [result_row("loop-a", "executed", "c")])
    (tmp_path / "p.json").write_text(json.dumps(p))
    (tmp_path / "h.json").write_text(json.dumps(h))
    (tmp_path / "h.jsonl").write_text(json.dumps(execute_row(h)) + "\n")
    monkeypatch.chdir(tmp_path)
    doc = cli_status(
        capsys,
        repo,
        "--policy-state-file",
        "p.json",
        "--handoff-state-file",
        "h.json",
        "--handoff-telemetry-file",
        "h.jsonl",
    )
    fleet = FleetPaths.for_repo(repo.resolve())
    assert doc["files"] == {
        "registryFile": str(fleet.registry_file),
        "fleetStateFile": str(fleet.state_file),
        "policyStateFile": "p.json",
        "fleetTelemetryFile": str(fleet.reconcile_telemetry_file),
        "handoffStateFile": "h.json",
        "handoffTelemetryFile": "h.jsonl",
    }
    assert doc["traceLinkage"]["policyTraceId"] == "trace-elsewhere"
    assert doc["handoff"]["traceId"] == "trace-handoff-1"
    assert doc["latestHandoffTelemetry"]["category"] == "fleet_handoff_execute"
    # library overrides: a missing optional file is just null
    files = FleetStatusFiles(
        policy_state=tmp_path / "none.json", handoff_state=tmp_path / "no.json"
    )
    out = fleet_status(repo.resolve(), files=files, now=NOW)
    assert (out["policy"], out["handoff"], out["autonomous"]) == (None, None, None)
    capsys.readouterr()
    assert main(["fleet-status", "--help"]) == 0
    usage = capsys.readouterr().out
    for flag in ("--policy-state-file", "--handoff-state-file", "--handoff-telemetry-file"):
        assert flag in usage


# =============================================================================================
# end to end: reconcile -> policy -> handoff -> status (stub Superloop CLI)
# =============================================================================================
def run_ok(capsys: pytest.CaptureFixture[str], command: str, repo: Path, *args: str) -> Any:
    capsys.readouterr()
    code = main([command, "--repo", str(repo), *args])
    out, err = capsys.readouterr()
    assert code == 0, f"{command} {args}: {err}"
    return json.loads(out) if out.strip() else None


def dead_port_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def stub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "stub-calls.jsonl"
    for key, value in stub_superloop_env(tmp_path / "bin", log).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("USER", "ops-bot")
    monkeypatch.setenv(TOKEN_ENV, "e2e-token")
    monkeypatch.delenv("OPS_MANAGER_TRACE_ID", raising=False)
    return log


def e2e_registry(loops: list[Any], *, gov: dict[str, Any], caps: int = 10) -> dict[str, Any]:
    policy = guarded_auto_policy(
        gov=gov,
        allow={"categories": ["reconcile_failed", "health_critical"], "intents": ["cancel"]},
        safety={
            "maxActionsPerRun": caps,
            "maxActionsPerLoop": caps,
            "cooldownSeconds": 0,
            "killSwitch": False,
        },
    )
    policy["noiseControls"] = {"dedupeWindowSeconds": 0}
    return registry_doc(loops, fleet_id="fleet-e2e", policy=policy)


def test_end_to_end_autonomous_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_env: Path
) -> None:
    """A local loop executes, a dead sprite's cancel fails, a third loop is run-cap blocked and
    the dead sprite's degraded health is manual-only: status shows the outcome rollup, the
    policy and transport paths, and promotion reads it all."""
    repo = (tmp_path / "repo").resolve()
    loops = ["loop-a", "loop-dead", "loop-z"]
    make_fleet_repo(repo, loops, heartbeat_ages={"loop-a": 900, "loop-z": 900}, registry=False)
    dead = sprite_loop("loop-dead", dead_port_url(), retry_attempts=1, retry_backoff_seconds=0)
    write_registry(
        repo,
        e2e_registry([loop_entry("loop-a"), dead, loop_entry("loop-z")], gov=governance(), caps=2),
    )
    run_ok(capsys, "fleet-reconcile", repo, "--quiet", "--deterministic-order")
    policy = run_ok(capsys, "fleet-policy", repo)
    assert [c["candidateId"] for c in policy["candidates"]] == [
        "loop-a:health_critical",
        "loop-dead:health_degraded",
        "loop-dead:reconcile_failed",
        "loop-z:health_critical",
    ]
    assert (policy["autoEligibleCount"], policy["manualOnlyCount"]) == (2, 2)
    auto_run = run_ok(
        capsys,
        "fleet-handoff",
        repo,
        "--autonomous-execute",
        "--timeout-seconds",
        "0",
        "--interval-seconds",
        "0",
    )
    outcomes = sorted((r["loopId"], r["status"]) for r in auto_run["execution"]["results"])
    assert outcomes == [("loop-a", "executed"), ("loop-dead", "failed")]
    assert len(stub_calls(stub_env)) == 1

    doc = run_ok(capsys, "fleet-status", repo)
    auto = doc["autonomous"]
    assert (auto["mode"], auto["enabled"]) == ("guarded_auto", True)
    assert (auto["eligibleCandidateCount"], auto["manualOnlyCandidateCount"]) == (2, 2)
    assert auto["outcomeRollup"] == {
        "attempted": 2,
        "executed": 1,
        "ambiguous": 0,
        "failed": 1,
        "manual_backlog": 2,
    }
    assert auto["governance"]["posture"] == "active"
    assert auto["governance"]["changedBy"] == "ops-user"
    gates = auto["safetyGateDecisions"]
    assert gates["byReason"] == policy["summary"]["byAutonomyReason"]
    assert gates["byPath"]["policyGated"] == {
        "blockedCount": 4,
        "byReason": {
            "category_not_allowlisted": 1,
            "confidence_below_threshold": 1,
            "severity_below_threshold": 1,
            "autonomous_max_actions_per_run_exceeded": 1,
        },
    }
    assert gates["byPath"]["rolloutGated"] == {"blockedCount": 0, "byReason": {}}
    assert gates["byPath"]["transportGated"] == {
        "blockedCount": 1,
        "byReason": {"control_failed_command": 1},
    }
    assert gates["suppressionReasonCodes"] == [
        "autonomous_suppression_policy_gated",
        "autonomous_suppression_transport_gated",
    ]
    assert gates["blockedCount"] == 1 and gates["killSwitchActive"] is False
    assert auto["rollout"]["candidateBuckets"]["inCohortCount"] == policy["candidateCount"]
    assert auto["handoff"]["outcomeReasonCodes"] == {
        "control_confirmed": 1,
        "control_failed_command": 1,
    }
    assert doc["policy"]["traceId"] == doc["traceLinkage"]["policyTraceId"] == policy["traceId"]
    critical = [c for c in policy["candidates"] if c["severity"] == "critical"]
    warning = [c for c in policy["candidates"] if c["severity"] == "warning"]
    assert doc["policy"]["topCandidates"] == critical + warning
    assert doc["handoff"]["execution"]["byReasonCode"] == auto["handoff"]["outcomeReasonCodes"]
    assert doc["handoff"]["pendingManualOnlyCount"] == 2
    latest = doc["latestHandoffTelemetry"]
    assert (latest["category"], latest["execution"]["mode"]) == (
        "fleet_handoff_execute",
        "autonomous",
    )
    assert latest["autonomousOutcomeRollup"] == auto["outcomeRollup"]

    # promotion-gates over the generated status finds every field it needs
    gates_doc = run_ok(capsys, "promotion-gates", repo, "--trace-id", "tr-e2e")
    reasons = gates_doc["summary"]["reasonCodes"]
    assert "promotion_manual_backlog_unavailable" not in reasons
    assert "promotion_suppression_paths_missing" not in reasons
    assert gates_doc["gates"]["manualBacklog"]["manualBacklog"] == 2
    assert gates_doc["gates"]["safetySuppression"]["byPath"] == gates["byPath"]
    assert gates_doc["gates"]["governance"]["posture"] == "active"


def test_end_to_end_governance_relative_to_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_env: Path
) -> None:
    """reviewBy 3 days out: review_due_soon blocks (status-only, §6.15); a stale policy state
    read after the registry was renewed shows review_expired once its reviewBy passed."""
    now = utc_now_epoch()
    repo = (tmp_path / "repo").resolve()
    make_fleet_repo(repo, ["loop-red"], heartbeat_ages={"loop-red": 900}, now=now)
    soon = governance(now, review_in_days=3)
    write_registry(repo, e2e_registry(["loop-red"], gov=soon))
    run_ok(capsys, "fleet-reconcile", repo, "--quiet")
    policy = run_ok(capsys, "fleet-policy", repo)
    assert policy["autoEligibleCount"] == 1  # policy eligibility is not affected
    doc = run_ok(capsys, "fleet-status", repo)
    view = doc["autonomous"]["governance"]
    assert (view["posture"], view["blocksAutonomous"]) == ("review_due_soon", True)
    assert view["until"] == soon["reviewBy"]
    gated = doc["autonomous"]["safetyGateDecisions"]["byPath"]["governanceGated"]
    assert gated == {
        "blockedCount": policy["unsuppressedCount"],
        "reasonCodes": ["autonomous_governance_review_due_soon"],
    }
    assert doc["autonomous"]["outcomeRollup"]["manual_backlog"] == 0  # P only: manualOnlyCount

    # four days later the registry has been renewed, but policy has not been re-run
    later = now + 4 * DAY
    write_registry(repo, e2e_registry(["loop-red"], gov=governance(later, review_in_days=90)))
    stale = fleet_status(repo, now=later)["autonomous"]["governance"]
    assert (stale["posture"], stale["reasonCodes"]) == (
        "review_expired",
        ["autonomous_governance_review_expired"],
    )
    # re-running policy picks up the renewed governance
    fleet_policy(repo, now=later, env={})
    assert fleet_status(repo, now=later)["autonomous"]["governance"]["posture"] == "active"


# =============================================================================================
# never crash on hand-edited artifacts
# =============================================================================================
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "guarded_auto", "sprite_service", "autonomous", "failed"])
)
json_values = st.recursive(
    json_scalars,
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "mode", "x"]), c, max_size=3)
    ),
    max_leaves=6,
)
reason_keys = st.sampled_from(
    [*sorted(POLICY_GATE_REASONS), *sorted(ROLLOUT_GATE_REASONS), "other"]
)
policy_strategy = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["advisory", "guarded_auto"]) | json_values,
        "traceId": json_values,
        "candidateCount": json_values,
        "unsuppressedCount": json_values,
        "autoEligibleCount": json_values,
        "reasonCodes": json_values,
        "candidates": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "severity": st.sampled_from(["critical", "warning", "info"]) | json_values,
                    "suppressed": json_values,
                    "autonomous": json_values,
                },
            )
            | json_values,
            max_size=7,
        )
        | json_values,
        "summary": st.fixed_dictionaries(
            {},
            optional={"byAutonomyReason": st.dictionaries(reason_keys, json_values) | json_values},
        )
        | json_values,
        "autonomous": st.fixed_dictionaries(
            {},
            optional={
                "governance": st.fixed_dictionaries(
                    {},
                    optional={
                        "reviewBy": st.sampled_from([format_ts(NOW + DAY), "bad"]) | json_values,
                        "actor": json_values,
                        "authorityContextPresent": json_values,
                    },
                )
                | json_values,
                "rollout": st.dictionaries(
                    st.sampled_from(["canaryPercent", "pause", "candidateBuckets"]), json_values
                )
                | json_values,
                "controls": json_values,
            },
        )
        | json_values,
    },
)
handoff_strategy = st.fixed_dictionaries(
    {},
    optional={
        "mode": json_values,
        "intents": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "intentId": st.sampled_from(["i1", "i2"]),
                    "transport": json_values,
                    "status": json_values,
                    "autonomous": json_values,
                },
            ),
            max_size=3,
        )
        | json_values,
        "execution": st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(["autonomous", "manual"]) | json_values,
                "results": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "intentId": st.sampled_from(["i1", "i2"]),
                            "status": json_values,
                            "reasonCode": json_values,
                        },
                    ),
                    max_size=3,
                )
                | json_values,
                "requestedIntentCount": json_values,
            },
        )
        | json_values,
        "summary": json_values,
        "reasonCodes": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=st.none() | policy_strategy,
    h=st.none() | handoff_strategy,
    lh=st.none()
    | st.dictionaries(st.sampled_from(["execution", "summary", "category"]), json_values),
)
def test_any_policy_and_handoff_objects_build(
    p: dict[str, Any] | None, h: dict[str, Any] | None, lh: dict[str, Any] | None
) -> None:
    doc = status_of(p, h, lh)
    dumps_compact(doc)
    assert list(doc) == list(STATUS_KEY_ORDER)
    auto = doc["autonomous"]
    assert (auto is None) is (p is None and h is None)
    if auto is None:
        return
    decisions = auto["safetyGateDecisions"]
    by_path = decisions["byPath"]
    assert list(by_path) == PATHS
    assert decisions["suppressionReasonCodes"] == sorted(
        f"autonomous_suppression_{path[: -len('Gated')]}_gated"
        for path in PATHS
        if by_path[path]["blockedCount"] > 0
    )
    assert set(by_path["policyGated"]["byReason"]) <= POLICY_GATE_REASONS
    assert set(by_path["rolloutGated"]["byReason"]) <= ROLLOUT_GATE_REASONS
    if p is not None and doc["policy"] is not None:
        assert len(doc["policy"]["topCandidates"]) <= 5
    assert ("governance" in auto) is (p is not None)


# =============================================================================================
# Appendix A reference outputs (fleet.md; compact, ``/abs/repo`` for the repo path)
# =============================================================================================
A5_STATUS = (
    '{"schemaVersion":"v1","generatedAt":"2026-11-22T02:34:33Z","source":{"repoPath":"/abs/re'
    'po","fleetId":"fleet-policy"},"fleet":{"status":"partial_failure","reasonCodes":["fleet_'
    'health_critical","fleet_partial_failure"],"loopCount":2,"successCount":1,"failedCount":1'
    ',"skippedCount":0,"startedAt":"2026-02-22T17:59:40Z","updatedAt":"2026-02-22T18:00:00Z",'
    '"durationSeconds":20,"traceId":"trace-fleet-policy-1","partialFailure":true},"healthRoll'
    'up":{"healthy":0,"degraded":1,"critical":1,"unknown":0},"exceptions":{"reconcileFailures'
    '":["loop-red"],"criticalLoops":["loop-red"],"degradedLoops":["loop-blue"],"skippedLoops"'
    ':[]},"policy":{"mode":"advisory","candidateCount":3,"unsuppressedCount":0,"suppressedCou'
    'nt":3,"reasonCodes":["fleet_actions_deduped","fleet_actions_policy_suppressed","fleet_ac'
    'tions_suppressed","no_action_required"],"topCandidates":[{"loopId":"loop-red","category"'
    ':"health_critical","signal":"health_critical","traceId":"trace-fleet-policy-1-loop-red",'
    '"candidateId":"loop-red:health_critical","severity":"critical","confidence":"high","rati'
    'onale":"Loop health is critical","taxonomyVersion":"v1","recommendedIntent":"cancel","su'
    'ppressionScope":"cooldown","suppressed":true,"suppressionReason":"advisory_cooldown_acti'
    've","suppressionSource":"policy.noiseControls.dedupeWindowSeconds","cooldown":{"enabled"'
    ':true,"windowSeconds":300,"active":true,"remainingSeconds":290,"lastUnsuppressedAt":"202'
    '6-11-22T02:18:15Z"},"autonomous":{"mode":"advisory","eligible":false,"manualOnly":true,"'
    'reasons":["candidate_suppressed","policy_mode_not_guarded_auto"],"gatingReasons":["candi'
    'date_suppressed","policy_mode_not_guarded_auto"],"recommendedIntent":"cancel","gates":{"'
    'modeGuardedAuto":false,"suppressed":true,"categoryAllowed":true,"intentAllowed":true,"se'
    'verityMeetsThreshold":true,"confidenceMeetsThreshold":true,"rolloutScopeAllowed":true,"r'
    'olloutCanarySelected":true},"safety":{"maxActionsPerRun":1,"maxActionsPerLoop":1,"cooldo'
    'wnSeconds":300,"killSwitch":false,"cooldown":{"active":false,"remainingSeconds":0,"lastE'
    'ligibleAt":null},"killSwitchActive":false,"runCapBlocked":false,"loopCapBlocked":false},'
    '"rollout":{"canaryPercent":100,"scopeLoopIds":[],"selector":{"salt":"fleet-autonomous-ro'
    'llout-v1","bucket":76,"inScope":true,"canarySelected":true,"inCohort":true},"pause":{"ac'
    'tive":false,"reasons":[],"manual":false,"auto":{"enabled":true,"active":false,"reasons":'
    '[],"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThr'
    'eshold":0.4,"metrics":{"windowExecutionCount":0,"attemptedCount":0,"executedCount":0,"am'
    'biguousCount":0,"failedCount":0,"ambiguityRate":0,"failureRate":0}}}}}},{"loopId":"loop-'
    'red","category":"reconcile_failed","signal":"status_failed","traceId":"trace-fleet-polic'
    'y-1-loop-red","candidateId":"loop-red:reconcile_failed","severity":"critical","confidenc'
    'e":"high","rationale":"Loop reconcile failed in fleet fan-out","taxonomyVersion":"v1","r'
    'ecommendedIntent":"cancel","suppressionScope":"loop","suppressed":true,"suppressionReaso'
    'n":"registry_policy_suppression","suppressionSource":"policy.suppressions.<loopId>","coo'
    'ldown":{"enabled":true,"windowSeconds":300,"active":false,"remainingSeconds":0,"lastUnsu'
    'ppressedAt":null},"autonomous":{"mode":"advisory","eligible":false,"manualOnly":true,"re'
    'asons":["candidate_suppressed","policy_mode_not_guarded_auto"],"gatingReasons":["candida'
    'te_suppressed","policy_mode_not_guarded_auto"],"recommendedIntent":"cancel","gates":{"mo'
    'deGuardedAuto":false,"suppressed":true,"categoryAllowed":true,"intentAllowed":true,"seve'
    'rityMeetsThreshold":true,"confidenceMeetsThreshold":true,"rolloutScopeAllowed":true,"rol'
    'loutCanarySelected":true},"safety":{"maxActionsPerRun":1,"maxActionsPerLoop":1,"cooldown'
    'Seconds":300,"killSwitch":false,"cooldown":{"active":false,"remainingSeconds":0,"lastEli'
    'gibleAt":null},"killSwitchActive":false,"runCapBlocked":false,"loopCapBlocked":false},"r'
    'ollout":{"canaryPercent":100,"scopeLoopIds":[],"selector":{"salt":"fleet-autonomous-roll'
    'out-v1","bucket":76,"inScope":true,"canarySelected":true,"inCohort":true},"pause":{"acti'
    've":false,"reasons":[],"manual":false,"auto":{"enabled":true,"active":false,"reasons":[]'
    ',"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThres'
    'hold":0.4,"metrics":{"windowExecutionCount":0,"attemptedCount":0,"executedCount":0,"ambi'
    'guousCount":0,"failedCount":0,"ambiguityRate":0,"failureRate":0}}}}}},{"loopId":"loop-bl'
    'ue","category":"health_degraded","signal":"health_degraded","traceId":"trace-fleet-polic'
    'y-1-loop-blue","candidateId":"loop-blue:health_degraded","severity":"warning","confidenc'
    'e":"medium","rationale":"Loop health is degraded","taxonomyVersion":"v1","recommendedInt'
    'ent":"cancel","suppressionScope":"global","suppressed":true,"suppressionReason":"registr'
    'y_policy_suppression","suppressionSource":"policy.suppressions.*","cooldown":{"enabled":'
    'true,"windowSeconds":300,"active":false,"remainingSeconds":0,"lastUnsuppressedAt":null},'
    '"autonomous":{"mode":"advisory","eligible":false,"manualOnly":true,"reasons":["candidate'
    '_suppressed","category_not_allowlisted","confidence_below_threshold","policy_mode_not_gu'
    'arded_auto","severity_below_threshold"],"gatingReasons":["candidate_suppressed","categor'
    'y_not_allowlisted","confidence_below_threshold","policy_mode_not_guarded_auto","severity'
    '_below_threshold"],"recommendedIntent":"cancel","gates":{"modeGuardedAuto":false,"suppre'
    'ssed":true,"categoryAllowed":false,"intentAllowed":true,"severityMeetsThreshold":false,"'
    'confidenceMeetsThreshold":false,"rolloutScopeAllowed":true,"rolloutCanarySelected":true}'
    ',"safety":{"maxActionsPerRun":1,"maxActionsPerLoop":1,"cooldownSeconds":300,"killSwitch"'
    ':false,"cooldown":{"active":false,"remainingSeconds":0,"lastEligibleAt":null},"killSwitc'
    'hActive":false,"runCapBlocked":false,"loopCapBlocked":false},"rollout":{"canaryPercent":'
    '100,"scopeLoopIds":[],"selector":{"salt":"fleet-autonomous-rollout-v1","bucket":45,"inSc'
    'ope":true,"canarySelected":true,"inCohort":true},"pause":{"active":false,"reasons":[],"m'
    'anual":false,"auto":{"enabled":true,"active":false,"reasons":[],"lookbackExecutions":5,"'
    'minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThreshold":0.4,"metrics":{"win'
    'dowExecutionCount":0,"attemptedCount":0,"executedCount":0,"ambiguousCount":0,"failedCoun'
    't":0,"ambiguityRate":0,"failureRate":0}}}}}}],"traceId":"trace-fleet-policy-1","updatedA'
    't":"2026-11-22T02:18:25Z"},"handoff":null,"autonomous":{"mode":"advisory","enabled":fals'
    'e,"policyReasonCodes":["fleet_actions_deduped","fleet_actions_policy_suppressed","fleet_'
    'actions_suppressed","no_action_required"],"handoffReasonCodes":[],"eligibleCandidateCoun'
    't":0,"manualOnlyCandidateCount":0,"outcomeRollup":{"attempted":0,"executed":0,"ambiguous'
    '":0,"failed":0,"manual_backlog":0},"governance":{"authorityContextPresent":true,"posture'
    '":"not_required","reasonCodes":[],"blocksAutonomous":false},"safetyGateDecisions":{"byRe'
    'ason":{},"byPath":{"policyGated":{"blockedCount":0,"byReason":{}},"rolloutGated":{"block'
    'edCount":0,"byReason":{}},"governanceGated":{"blockedCount":0,"reasonCodes":[]},"transpo'
    'rtGated":{"blockedCount":0,"byReason":{}}},"suppressionReasonCodes":[],"blockedCount":0,'
    '"killSwitchActive":false},"rollout":{"canaryPercent":100,"scopeLoopIds":[],"selectorSalt'
    '":"fleet-autonomous-rollout-v1","candidateBuckets":{"inScopeCount":3,"inCohortCount":3,"'
    'outOfCohortCount":0},"state":{"active":false,"manualPauseActive":false,"autoPauseActive"'
    ':false,"reasonCodes":[]},"autopause":{"enabled":true,"active":false,"reasons":[],"lookba'
    'ckExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThreshold":0.'
    '4,"metrics":{"windowExecutionCount":0,"attemptedCount":0,"executedCount":0,"ambiguousCou'
    'nt":0,"failedCount":0,"ambiguityRate":0,"failureRate":0}},"pause":{"active":false,"reaso'
    'ns":[],"manual":false,"auto":{"enabled":true,"active":false,"reasons":[],"lookbackExecut'
    'ions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThreshold":0.4,"metri'
    'cs":{"windowExecutionCount":0,"attemptedCount":0,"executedCount":0,"ambiguousCount":0,"f'
    'ailedCount":0,"ambiguityRate":0,"failureRate":0}}}}},"loops":[{"loopId":"loop-red","stat'
    'us":"failed","reasonCode":"reconcile_failed","reconcileStatus":"failed","healthStatus":"'
    'critical","healthReasonCodes":["transport_unreachable"],"durationSeconds":5,"traceId":"t'
    'race-fleet-policy-1-loop-red","transport":"local","sprite":{},"artifacts":{"stateFile":"'
    '/tmp/loop-red/state.json","healthFile":"/tmp/loop-red/health.json","cursorFile":"/tmp/lo'
    'op-red/cursor.json","reconcileTelemetryFile":"/tmp/loop-red/reconcile.jsonl"}},{"loopId"'
    ':"loop-blue","status":"success","reconcileStatus":"success","healthStatus":"degraded","h'
    'ealthReasonCodes":["ingest_stale"],"durationSeconds":4,"traceId":"trace-fleet-policy-1-l'
    'oop-blue","transport":"local","sprite":{},"artifacts":{"stateFile":"/tmp/loop-blue/state'
    '.json","healthFile":"/tmp/loop-blue/health.json","cursorFile":"/tmp/loop-blue/cursor.jso'
    'n","reconcileTelemetryFile":"/tmp/loop-blue/reconcile.jsonl"}}],"traceLinkage":{"fleetTr'
    'aceId":"trace-fleet-policy-1","policyTraceId":"trace-fleet-policy-1","loopTraceIds":["tr'
    'ace-fleet-policy-1-loop-blue","trace-fleet-policy-1-loop-red"],"sharedTraceId":null},"la'
    'testTelemetry":null,"latestHandoffTelemetry":null,"files":{"registryFile":"/abs/repo/.su'
    'perloop/ops-manager/fleet/registry.v1.json","fleetStateFile":"/abs/repo/.superloop/ops-m'
    'anager/fleet/state.json","policyStateFile":"/abs/repo/.superloop/ops-manager/fleet/polic'
    'y-state.json","fleetTelemetryFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/rec'
    'oncile.jsonl","handoffStateFile":"/abs/repo/.superloop/ops-manager/fleet/handoff-state.j'
    'son","handoffTelemetryFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/handoff.js'
    'onl"}}'
)

A6_GATES = (
    '{"schemaVersion":"v1","generatedAt":"2026-11-22T02:19:52Z","traceId":"tr-1","source":{"r'
    'epoPath":"/abs/repo","fleetStatusSource":"generated","fleetStatusFile":null,"handoffTele'
    'metryFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/handoff.jsonl","drillStateF'
    'ile":"/abs/repo/.superloop/ops-manager/fleet/drills/promotion.v1.json","promotionStateFi'
    'le":"/abs/repo/.superloop/ops-manager/fleet/promotion-state.json","promotionTelemetryFil'
    'e":"/abs/repo/.superloop/ops-manager/fleet/telemetry/promotion.jsonl"},"thresholds":{"wi'
    'ndowExecutions":20,"minSampleSize":20,"maxAmbiguityRate":0.2,"maxFailureRate":0.2,"maxMa'
    'nualBacklog":5,"maxDrillAgeHours":168},"summary":{"decision":"hold","promote":false,"gat'
    'ePassCount":2,"gateFailCount":3,"failedGates":["governance","outcome_reliability","drill'
    '_recency"],"reasonCodes":["promotion_autonomous_sample_insufficient","promotion_drill_st'
    'ate_missing","promotion_governance_posture_not_active","promotion_handoff_telemetry_miss'
    'ing","promotion_policy_mode_not_guarded_auto"]},"gates":{"governance":{"status":"fail","'
    'reasons":["promotion_policy_mode_not_guarded_auto","promotion_governance_posture_not_act'
    'ive"],"posture":"not_required","blocksAutonomous":false,"reasonCodes":[]},"outcomeReliab'
    'ility":{"status":"fail","reasons":["promotion_handoff_telemetry_missing","promotion_auto'
    'nomous_sample_insufficient"],"sampleRuns":0,"attempted":0,"executed":0,"ambiguous":0,"fa'
    'iled":0,"ambiguityRate":0,"failureRate":0},"manualBacklog":{"status":"pass","reasons":[]'
    ',"manualBacklog":0},"safetySuppression":{"status":"pass","reasons":[],"autopauseActive":'
    'false,"missingPaths":[],"byPath":{"policyGated":{"blockedCount":0,"byReason":{}},"rollou'
    'tGated":{"blockedCount":0,"byReason":{}},"governanceGated":{"blockedCount":0,"reasonCode'
    's":[]},"transportGated":{"blockedCount":0,"byReason":{}}}},"drillRecency":{"status":"fai'
    'l","reasons":["promotion_drill_state_missing"],"requiredDrills":["kill_switch","sprite_s'
    'ervice_outage","ambiguous_retry_guard"],"drills":[]}}}'
)

A4_HANDOFF_STATE = (
    '{"schemaVersion":"v1","generatedAt":"2026-11-22T02:34:20Z","updatedAt":"2026-11-22T02:34'
    ':22Z","fleetId":"fleet-handoff-autonomous-status","traceId":"trace-h3","policyTraceId":"'
    'trace-fleet-handoff-autonomous-status-policy","mode":"guarded_auto","source":{"registryF'
    'ile":"/abs/repo/.superloop/ops-manager/fleet/registry.v1.json","policyStateFile":"/abs/r'
    'epo/.superloop/ops-manager/fleet/policy-state.json"},"control":{"idempotencyPrefix":"fle'
    'et-handoff","requiresOperatorConfirmation":true},"intents":[{"intentId":"loop-amb:reconc'
    'ile_failed:cancel","candidateId":"loop-amb:reconcile_failed","loopId":"loop-amb","catego'
    'ry":"reconcile_failed","severity":"critical","confidence":"high","rationale":"Loop recon'
    'cile failed in fleet fan-out","signal":"status_failed","intent":"cancel","recommendedInt'
    'ent":"cancel","status":"execution_ambiguous","requiresOperatorConfirmation":true,"fleetT'
    'raceId":"trace-h3","policyTraceId":"trace-fleet-handoff-autonomous-status-policy","auton'
    'omous":{"eligible":true,"manualOnly":false,"reasons":[]},"idempotencyKey":"fleet-handoff'
    '-trace-h3-loop-amb-reconcile_failed-cancel","transport":"sprite_service","service":{"bas'
    'eUrl":"http://sprite-service.local","tokenEnv":"MYTOK","retryAttempts":3,"retryBackoffSe'
    'conds":1},"metadata":{},"execution":{"mode":"autonomous","executedAt":"2026-11-22T02:34:'
    '21Z","requestedBy":"ops-bot","status":"ambiguous","reasonCode":"control_ambiguous","trac'
    'eId":"trace-h3","idempotencyKey":"fleet-handoff-trace-h3-loop-amb-reconcile_failed-cance'
    'l","autonomousEligible":true,"controlExitCode":2,"controlStatus":"ambiguous"}},{"intentI'
    'd":"loop-ok:reconcile_failed:cancel","candidateId":"loop-ok:reconcile_failed","loopId":"'
    'loop-ok","category":"reconcile_failed","severity":"critical","confidence":"high","ration'
    'ale":"Loop reconcile failed in fleet fan-out","signal":"status_failed","intent":"cancel"'
    ',"recommendedIntent":"cancel","status":"executed","requiresOperatorConfirmation":true,"f'
    'leetTraceId":"trace-h3","policyTraceId":"trace-fleet-handoff-autonomous-status-policy","'
    'candidateTraceId":"t-ok","autonomous":{"eligible":true,"manualOnly":false,"reasons":[]},'
    '"idempotencyKey":"fleet-handoff-trace-h3-loop-ok-reconcile_failed-cancel","transport":"l'
    'ocal","service":{"retryAttempts":3,"retryBackoffSeconds":1},"metadata":{"owner":"a"},"ex'
    'ecution":{"mode":"autonomous","executedAt":"2026-11-22T02:34:22Z","requestedBy":"ops-bot'
    '","status":"executed","reasonCode":"control_confirmed","traceId":"trace-h3","idempotency'
    'Key":"fleet-handoff-trace-h3-loop-ok-reconcile_failed-cancel","autonomousEligible":true,'
    '"controlExitCode":0,"controlStatus":"confirmed","confirmed":true}}],"summary":{"candidat'
    'eCount":2,"unsuppressedCandidateCount":2,"intentCount":2,"autoEligibleIntentCount":2,"ma'
    'nualOnlyIntentCount":0,"pendingConfirmationCount":0,"executedCount":1,"ambiguousCount":1'
    ',"failedCount":0},"reasonCodes":["fleet_handoff_action_required","fleet_handoff_auto_eli'
    'gible_intents","fleet_handoff_executed","fleet_handoff_execution_ambiguous"],"execution"'
    ':{"mode":"autonomous","requestedBy":"ops-bot","requestedAt":"2026-11-22T02:34:20Z","comp'
    'letedAt":"2026-11-22T02:34:22Z","note":null,"requestedIntentCount":2,"executedIntentCoun'
    't":2,"executedCount":1,"ambiguousCount":1,"failedCount":0,"results":[{"intentId":"loop-a'
    'mb:reconcile_failed:cancel","loopId":"loop-amb","intent":"cancel","traceId":"trace-h3","'
    'idempotencyKey":"fleet-handoff-trace-h3-loop-amb-reconcile_failed-cancel","requestedBy":'
    '"ops-bot","executedAt":"2026-11-22T02:34:21Z","status":"ambiguous","reasonCode":"control'
    '_ambiguous","executionMode":"autonomous","autonomousEligible":true,"controlExitCode":2,"'
    'control":{"status":"ambiguous","confirmed":false}},{"intentId":"loop-ok:reconcile_failed'
    ':cancel","loopId":"loop-ok","intent":"cancel","traceId":"trace-h3","idempotencyKey":"fle'
    'et-handoff-trace-h3-loop-ok-reconcile_failed-cancel","requestedBy":"ops-bot","executedAt'
    '":"2026-11-22T02:34:22Z","status":"executed","reasonCode":"control_confirmed","execution'
    'Mode":"autonomous","autonomousEligible":true,"controlExitCode":0,"control":{"status":"co'
    'nfirmed","confirmed":true}}]}}'
)
