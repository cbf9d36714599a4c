"""Fleet policy: reducer decision tables, properties, Appendix A goldens, and the CLI.

Layers:

- pure reducer (:mod:`ops_manager.reducers.fleet_policy`): candidates, suppression precedence,
  the dedupe window's anchor, every gating reason, every safety rail in order, policy reason
  codes, and byte-exact reproductions of the Appendix A outputs;
- hypothesis properties: a kill switch makes nothing eligible; the per-run and per-loop caps
  are never exceeded, whatever the candidate set;
- the CLI in process (``ops_manager.cli.main``): the upstream policy requirement lines
  (fleet.md §5.2), governance audit stream, errors, trace-id precedence, the fleet lock.

Governance deadlines are computed relative to now (DECISIONS fleet 6.17); the goldens use a
fixed, injected clock instead of the wall clock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.cli import main
from ops_manager.engine.fleet_policy import (
    FleetPolicyFiles,
    fleet_policy,
    history_index_file,
    read_history_index,
)
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_policy import (
    AUTONOMOUS_COOLDOWN_ACTIVE,
    CANDIDATE_SUPPRESSED,
    CATEGORY_NOT_ALLOWLISTED,
    CONFIDENCE_BELOW_THRESHOLD,
    INTENT_NOT_ALLOWLISTED,
    KILL_SWITCH_ENABLED,
    MAX_PER_LOOP_EXCEEDED,
    MAX_PER_RUN_EXCEEDED,
    MODE_NOT_GUARDED_AUTO,
    SEVERITY_BELOW_THRESHOLD,
    AutonomyControls,
    CandidateSignal,
    HistoryIndex,
    PolicyEvaluation,
    PolicyFiles,
    PolicyInputs,
    autonomous_eligible_candidates,
    candidate_autonomy,
    dedupe_window,
    evaluate_policy,
    generate_candidates,
    index_history,
    manual_only_candidates,
    registry_suppression,
    safety_rail,
)
from ops_manager.reducers.fleet_registry import normalize_registry
from ops_manager.store import FleetPaths
from tests import fleet_fixtures as ff

NOW = int(time.time())
DAY = 86400
ABS_REPO = Path("/abs/repo")
ABS = "/abs/repo/.superloop/ops-manager/fleet"
ABS_FILES = PolicyFiles(
    registry_file=f"{ABS}/registry.v1.json",
    fleet_state_file=f"{ABS}/state.json",
    policy_state_file=f"{ABS}/policy-state.json",
    governance_audit_file=f"{ABS}/telemetry/policy-governance.jsonl",
    handoff_telemetry_file=f"{ABS}/telemetry/handoff.jsonl",
    policy_telemetry_file=f"{ABS}/telemetry/policy.jsonl",
    policy_history_file=f"{ABS}/telemetry/policy-history.jsonl",
)


def iso(offset: int = 0, now: int = NOW) -> str:
    """A timestamp ``offset`` seconds from now."""
    return format_ts(now + offset)


def registry_doc(
    loops: Sequence[str],
    *,
    mode: str = "advisory",
    fleet_id: str = "fleet-policy",
    suppressions: Mapping[str, list[str]] | None = None,
    dedupe: int | None = None,
    autonomous: Mapping[str, Any] | None = None,
    now: int = NOW,
) -> dict[str, Any]:
    """A raw registry (``tests.fleet_fixtures``); guarded_auto gets governance relative to now."""
    auto = dict(autonomous or {})
    if mode == "guarded_auto":
        policy = ff.guarded_auto_policy(now, gov=auto.pop("governance", None), **auto)
    else:
        policy = {"mode": mode, **({"autonomous": auto} if auto else {})}
    if suppressions is not None:
        policy["suppressions"] = dict(suppressions)
    if dedupe is not None:
        policy["noiseControls"] = {"dedupeWindowSeconds": dedupe}
    return ff.registry_doc(loops, fleet_id=fleet_id, policy=policy)


def guarded(
    categories: Sequence[str] = ("reconcile_failed", "health_critical"),
    *,
    run: int = 5,
    loop: int = 5,
    cooldown: int = 0,
    kill: bool = False,
    rollout: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``policy.autonomous`` block."""
    block: dict[str, Any] = {
        "allow": {"categories": list(categories), "intents": ["cancel"]},
        "safety": {
            "maxActionsPerRun": run,
            "maxActionsPerLoop": loop,
            "cooldownSeconds": cooldown,
            "killSwitch": kill,
        },
    }
    if rollout is not None:
        block["rollout"] = dict(rollout)
    block.update(extra)
    return block


def result(
    loop_id: str, status: str = "success", health: str = "healthy", trace: str = "trace-fleet-1"
) -> dict[str, Any]:
    """One fleet-state result row (``tests.fleet_fixtures.loop_result``)."""
    return ff.loop_result(
        ABS_REPO, loop_id, status=status, health_status=health, fleet_trace_id=trace
    )


def fleet_state(
    results: Sequence[Mapping[str, Any]],
    *,
    fleet_id: str = "fleet-policy",
    trace: str = "trace-fleet-1",
) -> dict[str, Any]:
    """A fleet ``state.json`` as fleet-reconcile writes it (``tests.fleet_fixtures``)."""
    return ff.fleet_state(results, fleet_id=fleet_id, trace_id=trace)


def evaluate(
    doc: Mapping[str, Any],
    state: Mapping[str, Any],
    *,
    history: Sequence[Mapping[str, Any]] = (),
    handoff: Sequence[Mapping[str, Any]] = (),
    previous: Mapping[str, Any] | None = None,
    now: int = NOW,
    window: int | None = None,
    trace: str = "trace-policy-1",
    files: PolicyFiles = ABS_FILES,
) -> PolicyEvaluation:
    """Normalise ``doc`` and run the pure policy reducer."""
    registry = normalize_registry(doc, source_file=files.registry_file, now=now)
    if window is None:
        window = registry["policy"]["noiseControls"]["dedupeWindowSeconds"]
    return evaluate_policy(
        PolicyInputs(
            registry=registry,
            fleet_state=state,
            history=index_history(history),
            handoff_rows=handoff,
            previous_state=previous,
            now=now,
            trace_id=trace,
            dedupe_window_seconds=window,
            files=files,
        )
    )


def by_id(evaluation: PolicyEvaluation) -> dict[str, dict[str, Any]]:
    """Candidates keyed by candidateId."""
    return {c["candidateId"]: c for c in evaluation.state["candidates"]}


def reasons(evaluation: PolicyEvaluation, candidate_id: str) -> list[str]:
    """Final autonomous reasons of one candidate."""
    return list(by_id(evaluation)[candidate_id]["autonomous"]["reasons"])


# --- 1. candidates -------------------------------------------------------------------------------


def test_candidates_from_results_sorted_and_deduplicated() -> None:
    signals = generate_candidates(
        [
            result("loop-red", "failed", "critical", trace="first"),
            result("loop-blue", "success", "degraded"),
            result("loop-green", "success", "healthy"),
            result("loop-grey", "skipped", "unknown"),
            result("loop-red", "failed", "critical", trace="second"),  # duplicate: first wins
            "not-an-object",
            {"status": "failed"},  # no loopId
        ]
    )
    assert [s.candidate_id for s in signals] == [
        "loop-blue:health_degraded",
        "loop-red:health_critical",
        "loop-red:reconcile_failed",
    ]
    assert {s.trace_id for s in signals if s.loop_id == "loop-red"} == {"first-loop-red"}
    assert [s.profile.signal for s in signals] == [
        "health_degraded",
        "health_critical",
        "status_failed",
    ]
    assert generate_candidates(None) == []


@pytest.mark.parametrize(
    ("category", "severity", "confidence", "rationale"),
    [
        ("reconcile_failed", "critical", "high", "Loop reconcile failed in fleet fan-out"),
        ("health_critical", "critical", "high", "Loop health is critical"),
        ("health_degraded", "warning", "medium", "Loop health is degraded"),
    ],
)
def test_category_profiles(category: str, severity: str, confidence: str, rationale: str) -> None:
    profile = CandidateSignal("l", category).profile
    assert (profile.severity, profile.confidence, profile.rationale) == (
        severity,
        confidence,
        rationale,
    )


# --- 2. suppression ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suppressions", "expected"),
    [
        ({"loop-red": ["health_critical"]}, ("loop", "policy.suppressions.<loopId>")),
        ({"*": ["health_critical"]}, ("global", "policy.suppressions.*")),
        # loop wins over global
        (
            {"*": ["health_critical"], "loop-red": ["health_critical"]},
            ("loop", "policy.suppressions.<loopId>"),
        ),
        (
            {"loop-red": ["reconcile_failed"], "*": ["health_critical"]},
            ("global", "policy.suppressions.*"),
        ),
        ({"loop-blue": ["health_critical"]}, None),
        ({}, None),
        (None, None),
    ],
)
def test_suppression_precedence(suppressions: Any, expected: tuple[str, str] | None) -> None:
    decision = registry_suppression("loop-red", "health_critical", suppressions)
    if expected is None:
        assert decision is None
    else:
        assert decision is not None
        assert (decision.scope, decision.source) == expected
        assert decision.reason == "registry_policy_suppression"


def test_registry_suppression_wins_over_cooldown() -> None:
    doc = registry_doc(["loop-red"], suppressions={"loop-red": ["health_critical"]})
    history = [{"candidateId": "loop-red:health_critical", "timestamp": iso(-10)}]
    candidate = by_id(
        evaluate(doc, fleet_state([result("loop-red", health="critical")]), history=history)
    )["loop-red:health_critical"]
    assert candidate["suppressionScope"] == "loop"
    assert candidate["suppressionReason"] == "registry_policy_suppression"
    assert candidate["cooldown"]["active"] is True  # computed, but registry suppression wins


# --- 3. dedupe window ---------------------------------------------------------------------------


def _hist(offset: int, suppressed: bool | None = None, cid: str = "c") -> dict[str, Any]:
    row: dict[str, Any] = {"candidateId": cid, "timestamp": iso(offset)}
    if suppressed is not None:
        row["suppressed"] = suppressed
    return row


@pytest.mark.parametrize(
    ("rows", "window", "active", "remaining", "last"),
    [
        ([], 300, False, 0, None),
        ([_hist(-100, False)], 300, True, 200, -100),
        ([_hist(-100)], 300, True, 200, -100),  # missing `suppressed` counts as unsuppressed
        ([_hist(-300, False)], 300, False, 0, -300),  # age == window: expired
        # rows written while in cooldown are suppressed: the anchor does not slide
        ([_hist(-400, False), _hist(-200, True), _hist(-10, True)], 300, False, 0, -400),
        ([_hist(-250, False), _hist(-10, True)], 300, True, 50, -250),
        # the latest unsuppressed emission is the anchor
        ([_hist(-1000, False), _hist(-20, False)], 300, True, 280, -20),
        # other candidates and unparseable timestamps are ignored
        (
            [_hist(-5, False, cid="other"), {"candidateId": "c", "timestamp": "yesterday"}],
            300,
            False,
            0,
            None,
        ),
        ([_hist(-10, False)], 0, False, 0, None),  # window 0 disables dedupe
    ],
)
def test_dedupe_window_anchor(
    rows: list[dict[str, Any]], window: int, active: bool, remaining: int, last: int | None
) -> None:
    decision = dedupe_window("c", index_history(rows), NOW, window)
    assert decision.enabled is (window > 0)
    assert (decision.active, decision.remaining_seconds) == (active, remaining)
    assert decision.to_json()["lastUnsuppressedAt"] == (None if last is None else iso(last))


def test_candidate_resurfaces_once_window_elapsed_since_last_unsuppressed() -> None:
    """Scripted time: emissions at t0, t0+100 (deduped), t0+200 (deduped), t0+300 (resurfaces)."""
    doc = registry_doc(["loop-red"], dedupe=300)
    state = fleet_state([result("loop-red", health="critical")])
    history: list[dict[str, Any]] = []
    seen = []
    for step in range(5):
        now = NOW + step * 100
        ev = evaluate(doc, state, history=history, now=now)
        history += ev.history_rows
        seen.append(ev.state["candidates"][0]["suppressionScope"])
    assert seen == [None, "cooldown", "cooldown", None, "cooldown"]


# --- 4. gating decision table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "autonomous", "health", "expected"),
    [
        ("guarded_auto", guarded(), "critical", []),
        ("advisory", guarded(), "critical", [MODE_NOT_GUARDED_AUTO]),
        ("guarded_auto", guarded(["reconcile_failed"]), "critical", [CATEGORY_NOT_ALLOWLISTED]),
        (
            "guarded_auto",
            {**guarded(), "allow": {"categories": ["health_critical"], "intents": []}},
            "critical",
            [INTENT_NOT_ALLOWLISTED],
        ),
        (
            "guarded_auto",
            guarded(["health_degraded"]),
            "degraded",
            [CONFIDENCE_BELOW_THRESHOLD, SEVERITY_BELOW_THRESHOLD],  # default critical/high
        ),
        (
            "guarded_auto",
            guarded(
                ["health_degraded"], thresholds={"minSeverity": "warning", "minConfidence": "low"}
            ),
            "degraded",
            [],
        ),
        (
            "guarded_auto",
            guarded(
                ["health_degraded"], thresholds={"minSeverity": "info", "minConfidence": "high"}
            ),
            "degraded",
            [CONFIDENCE_BELOW_THRESHOLD],
        ),
        (
            "guarded_auto",
            guarded(rollout={"scope": {"loopIds": ["loop-blue"]}}),
            "critical",
            ["autonomous_rollout_scope_excluded"],
        ),
        (
            "guarded_auto",
            guarded(rollout={"canaryPercent": 76}),  # loop-red bucket 76: 76 < 76 is false
            "critical",
            ["autonomous_rollout_canary_excluded"],
        ),
        ("guarded_auto", guarded(rollout={"canaryPercent": 77}), "critical", []),
        (
            "guarded_auto",
            guarded(rollout={"pause": {"manual": True}}),
            "critical",
            ["autonomous_rollout_paused_manual"],
        ),
    ],
)
def test_gating_reason_table(
    mode: str, autonomous: dict[str, Any], health: str, expected: list[str]
) -> None:
    doc = registry_doc(["loop-red", "loop-blue"], mode=mode, autonomous=autonomous, dedupe=0)
    ev = evaluate(doc, fleet_state([result("loop-red", health=health)]))
    candidate = ev.state["candidates"][0]
    assert candidate["autonomous"]["gatingReasons"] == expected
    assert candidate["autonomous"]["reasons"] == expected
    assert candidate["autonomous"]["eligible"] is (not expected)
    assert candidate["autonomous"]["manualOnly"] is bool(expected)


def test_suppressed_candidate_gating_reason_and_gates() -> None:
    doc = registry_doc(
        ["loop-red"],
        mode="guarded_auto",
        autonomous=guarded(),
        suppressions={"*": ["health_critical"]},
    )
    candidate = evaluate(doc, fleet_state([result("loop-red", health="critical")])).state[
        "candidates"
    ][0]
    assert candidate["autonomous"]["reasons"] == [CANDIDATE_SUPPRESSED]
    assert candidate["autonomous"]["gates"] == {
        "modeGuardedAuto": True,
        "suppressed": True,
        "categoryAllowed": True,
        "intentAllowed": True,
        "severityMeetsThreshold": True,
        "confidenceMeetsThreshold": True,
        "rolloutScopeAllowed": True,
        "rolloutCanarySelected": True,
    }


# --- 5. safety rails ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, None),
        ({"kill_switch": True}, KILL_SWITCH_ENABLED),
        # precedence: kill switch > cooldown > run cap > loop cap
        ({"kill_switch": True, "cooldown_active": True, "selected_total": 9}, KILL_SWITCH_ENABLED),
        (
            {"cooldown_active": True, "selected_total": 9, "selected_for_loop": 9},
            AUTONOMOUS_COOLDOWN_ACTIVE,
        ),
        ({"selected_total": 2, "selected_for_loop": 9}, MAX_PER_RUN_EXCEEDED),
        ({"selected_total": 1, "selected_for_loop": 1}, MAX_PER_LOOP_EXCEEDED),
        ({"max_actions_per_run": 0}, MAX_PER_RUN_EXCEEDED),
        ({"max_actions_per_loop": 0}, MAX_PER_LOOP_EXCEEDED),
        # gated candidates and advisory mode get no safety reason
        ({"gating_reasons": ["category_not_allowlisted"], "kill_switch": True}, None),
        ({"mode": "advisory", "kill_switch": True}, None),
    ],
)
def test_safety_rail_table(kwargs: dict[str, Any], expected: str | None) -> None:
    args: dict[str, Any] = {
        "gating_reasons": [],
        "mode": "guarded_auto",
        "kill_switch": False,
        "cooldown_active": False,
        "selected_total": 0,
        "selected_for_loop": 0,
        "max_actions_per_run": 2,
        "max_actions_per_loop": 1,
    }
    args.update(kwargs)
    assert safety_rail(**args) == expected


def test_caps_example_from_spec() -> None:
    """§3.9: caps run=2 / loop=1; loop-a failed+critical, loop-b critical, loop-c critical."""
    doc = registry_doc(
        ["loop-a", "loop-b", "loop-c"], mode="guarded_auto", autonomous=guarded(run=2, loop=1)
    )
    ev = evaluate(
        doc,
        fleet_state(
            [
                result("loop-a", "failed", "critical"),
                result("loop-b", health="critical"),
                result("loop-c", health="critical"),
            ]
        ),
    )
    assert reasons(ev, "loop-a:health_critical") == []
    assert reasons(ev, "loop-a:reconcile_failed") == [MAX_PER_LOOP_EXCEEDED]
    assert reasons(ev, "loop-b:health_critical") == []
    assert reasons(ev, "loop-c:health_critical") == [MAX_PER_RUN_EXCEEDED]
    assert ev.state["autoEligibleCount"] == 2
    safety = by_id(ev)["loop-c:health_critical"]["autonomous"]["safety"]
    assert (safety["runCapBlocked"], safety["loopCapBlocked"]) == (True, False)
    assert "fleet_auto_candidates_safety_blocked" in ev.state["reasonCodes"]


def test_kill_switch_blocks_everything_with_reason() -> None:
    doc = registry_doc(["loop-red"], mode="guarded_auto", autonomous=guarded(kill=True))
    ev = evaluate(doc, fleet_state([result("loop-red", "failed", "critical")]))
    assert ev.state["autoEligibleCount"] == 0 and ev.state["manualOnlyCount"] == 2
    for candidate in ev.state["candidates"]:
        assert candidate["autonomous"]["reasons"] == [KILL_SWITCH_ENABLED]
        assert candidate["autonomous"]["gatingReasons"] == []
        assert candidate["autonomous"]["safety"]["killSwitchActive"] is True
    assert "fleet_auto_kill_switch_enabled" in ev.state["reasonCodes"]


@pytest.mark.parametrize(
    ("cooldown", "eligible_ago", "expected", "remaining"),
    [
        (600, 60, [AUTONOMOUS_COOLDOWN_ACTIVE], 540),
        (600, 600, [], 0),
        (0, 60, [], 0),  # cooldown 0 disables the rail
        (600, None, [], 0),
    ],
)
def test_autonomous_cooldown_rail(
    cooldown: int, eligible_ago: int | None, expected: list[str], remaining: int
) -> None:
    doc = registry_doc(
        ["loop-a"], mode="guarded_auto", autonomous=guarded(cooldown=cooldown), dedupe=0
    )
    history = (
        []
        if eligible_ago is None
        else [
            {
                "candidateId": "loop-a:health_critical",
                "timestamp": iso(-eligible_ago),
                "autonomousEligible": True,
            }
        ]
    )
    ev = evaluate(doc, fleet_state([result("loop-a", health="critical")]), history=history)
    candidate = ev.state["candidates"][0]
    assert candidate["autonomous"]["reasons"] == expected
    assert candidate["autonomous"]["safety"]["cooldown"]["remainingSeconds"] == remaining


# --- properties ------------------------------------------------------------------------------

_LOOPS = [f"loop-{c}" for c in "abcdefgh"]
_results = st.lists(
    st.builds(
        result,
        st.sampled_from(_LOOPS),
        st.sampled_from(["success", "failed", "skipped"]),
        st.sampled_from(["healthy", "degraded", "critical", "unknown"]),
    ),
    max_size=14,
)
_autonomous = st.builds(
    guarded,
    st.lists(
        st.sampled_from(["reconcile_failed", "health_critical", "health_degraded"]), unique=True
    ),
    run=st.integers(0, 6),
    loop=st.integers(0, 3),
    cooldown=st.sampled_from([0, 300]),
    kill=st.booleans(),
    rollout=st.fixed_dictionaries(
        {
            "canaryPercent": st.integers(0, 100),
            "pause": st.fixed_dictionaries({"manual": st.booleans()}),
        }
    ),
    thresholds=st.fixed_dictionaries(
        {
            "minSeverity": st.sampled_from(["critical", "warning", "info"]),
            "minConfidence": st.sampled_from(["high", "medium", "low"]),
        }
    ),
)
_history = st.lists(
    st.fixed_dictionaries(
        {
            "candidateId": st.sampled_from([f"{loop}:health_critical" for loop in _LOOPS]),
            "timestamp": st.integers(-900, 0).map(iso),
            "suppressed": st.booleans(),
            "autonomousEligible": st.booleans(),
        }
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    results=_results,
    autonomous=_autonomous,
    history=_history,
    mode=st.sampled_from(["advisory", "guarded_auto"]),
)
def test_kill_switch_makes_nothing_eligible(
    results: list[dict[str, Any]],
    autonomous: dict[str, Any],
    history: list[dict[str, Any]],
    mode: str,
) -> None:
    autonomous = {**autonomous, "safety": {**autonomous["safety"], "killSwitch": True}}
    doc = registry_doc(_LOOPS, mode=mode, autonomous=autonomous, dedupe=60)
    ev = evaluate(doc, fleet_state(results), history=history)
    assert ev.state["autoEligibleCount"] == 0
    assert all(not c["autonomous"]["eligible"] for c in ev.state["candidates"])
    assert all(not row["autonomousEligible"] for row in ev.history_rows)
    assert autonomous_eligible_candidates(ev.state) == []
    assert "fleet_auto_candidates_eligible" not in ev.state["reasonCodes"]


@settings(max_examples=80, deadline=None)
@given(results=_results, autonomous=_autonomous, history=_history)
def test_caps_are_never_exceeded(
    results: list[dict[str, Any]], autonomous: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    doc = registry_doc(_LOOPS, mode="guarded_auto", autonomous=autonomous, dedupe=60)
    ev = evaluate(doc, fleet_state(results), history=history)
    eligible = [c for c in ev.state["candidates"] if c["autonomous"]["eligible"]]
    safety = autonomous["safety"]
    assert len(eligible) <= safety["maxActionsPerRun"]
    for loop in _LOOPS:
        assert sum(c["loopId"] == loop for c in eligible) <= safety["maxActionsPerLoop"]
    # eligibility is exactly "no reason", and the counts agree with the candidates
    for candidate in ev.state["candidates"]:
        autonomy = candidate["autonomous"]
        assert autonomy["eligible"] is (autonomy["reasons"] == [])
        assert autonomy["manualOnly"] is (not autonomy["eligible"])
        assert set(autonomy["gatingReasons"]) <= set(autonomy["reasons"])
        assert len(set(autonomy["reasons"]) - set(autonomy["gatingReasons"])) <= 1
    assert ev.state["autoEligibleCount"] == len(eligible)
    assert (
        ev.state["autoEligibleCount"] + ev.state["manualOnlyCount"] == ev.state["unsuppressedCount"]
    )


# --- policy-state reason codes ------------------------------------------------------------------


def test_no_candidates_no_action_and_idle_pause() -> None:
    doc = registry_doc(
        ["loop-a"], mode="guarded_auto", autonomous=guarded(rollout={"pause": {"manual": True}})
    )
    ev = evaluate(doc, fleet_state([result("loop-a")]))
    assert ev.state["reasonCodes"] == ["no_action_required"]
    assert ev.state["candidateCount"] == 0 and ev.history_rows == []
    pause = ev.state["autonomous"]["rollout"]["pause"]
    assert (pause["active"], pause["manual"]) == (False, True)  # fleet.md §6.5, kept


def test_reason_codes_rollout_pause_and_autopause() -> None:
    rows = [
        {
            "timestamp": iso(-10 * i),
            "category": "fleet_handoff_execute",
            "execution": {
                "mode": "autonomous",
                "requestedIntentCount": 1,
                "executedIntentCount": 1,
                "failedCount": 1,
            },
        }
        for i in range(3)
    ]
    doc = registry_doc(
        ["loop-1", "loop-2", "loop-3"],
        mode="guarded_auto",
        autonomous=guarded(
            rollout={
                "canaryPercent": 50,
                "selector": {"salt": "cohort-seed-v1"},
                "scope": {"loopIds": ["loop-1", "loop-2"]},
            }
        ),
    )
    ev = evaluate(
        doc, fleet_state([result(f"loop-{i}", health="critical") for i in (1, 2, 3)]), handoff=rows
    )
    assert ev.state["reasonCodes"] == [
        "fleet_action_required",
        "fleet_auto_candidates_autopause_triggered",
        "fleet_auto_candidates_blocked",
        "fleet_auto_candidates_paused",
        "fleet_auto_candidates_rollout_gated",
    ]
    assert ev.state["summary"]["byAutonomyReason"] == {
        "autonomous_autopause_failure_spike": 3,
        "autonomous_rollout_canary_excluded": 1,
        "autonomous_rollout_paused_auto": 3,
        "autonomous_rollout_scope_excluded": 1,
    }
    assert ev.state["autonomous"]["rollout"]["candidateBuckets"] == {
        "inScopeCount": 2,
        "inCohortCount": 1,
        "outOfCohortCount": 1,
    }


def test_auto_pause_disabled_by_registry_false() -> None:
    """DECISIONS fleet 6.1: ``autoPause.enabled: false`` really disables auto-pause."""
    rows = [
        {
            "timestamp": iso(-i),
            "category": "fleet_handoff_execute",
            "execution": {"mode": "autonomous", "executedIntentCount": 2, "failedCount": 2},
        }
        for i in range(3)
    ]
    doc = registry_doc(
        ["loop-a"],
        mode="guarded_auto",
        autonomous=guarded(rollout={"autoPause": {"enabled": False}}),
    )
    ev = evaluate(doc, fleet_state([result("loop-a", health="critical")]), handoff=rows)
    auto = ev.state["autonomous"]["rollout"]["pause"]["auto"]
    assert auto["enabled"] is False and auto["active"] is False
    assert auto["metrics"]["failureRate"] == 1  # still measured
    assert ev.state["autoEligibleCount"] == 1


def test_history_rows_keep_false_booleans() -> None:
    """Booleans are real booleans (DECISIONS fleet 6.2): false is written, not dropped."""
    doc = registry_doc(
        ["loop-1"],
        mode="guarded_auto",
        autonomous=guarded(rollout={"canaryPercent": 10, "selector": {"salt": "cohort-seed-v1"}}),
    )
    ev = evaluate(doc, fleet_state([result("loop-1", health="critical")]))
    row = ev.history_rows[0]
    assert row["autonomousRolloutInScope"] is True
    assert row["autonomousRolloutInCohort"] is False
    assert row["autonomousRolloutBucket"] == 55
    assert row["autonomousRolloutPauseActive"] is False
    assert row["autonomousAutoPauseActive"] is False
    assert "suppressionReason" not in row  # nulls are still dropped


def test_helpers_for_handoff_and_status() -> None:
    doc = registry_doc(
        ["loop-red", "loop-blue"],
        mode="guarded_auto",
        autonomous=guarded(["reconcile_failed"]),
        suppressions={"loop-blue": ["health_degraded"]},
    )
    ev = evaluate(
        doc,
        fleet_state(
            [result("loop-red", "failed", "critical"), result("loop-blue", health="degraded")]
        ),
    )
    assert [c["candidateId"] for c in autonomous_eligible_candidates(ev.state)] == [
        "loop-red:reconcile_failed"
    ]
    assert [c["candidateId"] for c in manual_only_candidates(ev.state)] == [
        "loop-red:health_critical"
    ]
    verdict = candidate_autonomy(by_id(ev)["loop-red:health_critical"])
    assert (verdict.eligible, verdict.manual_only, verdict.reasons) == (
        False,
        True,
        (CATEGORY_NOT_ALLOWLISTED,),
    )
    # a hand-written candidate without an autonomous block: manual only, no reasons
    bare = candidate_autonomy({"candidateId": "x:y", "loopId": "x"})
    assert (bare.eligible, bare.manual_only, bare.reasons) == (False, True, ())


def test_controls_defaults_from_empty_block() -> None:
    controls = AutonomyControls.from_json({})
    assert (
        controls.max_actions_per_run,
        controls.max_actions_per_loop,
        controls.cooldown_seconds,
    ) == (1, 1, 300)
    assert controls.kill_switch is False and controls.allowed_categories == ()
    assert HistoryIndex() == index_history([])


# --- Appendix A goldens (byte for byte; fixed injected clock) ------------------------------------

A2_COOLDOWN_CANDIDATE = (
    '{"loopId":"loop-red","category":"health_critical","signal":"health_critical","traceId":"'
    'trace-fleet-policy-1-loop-red","candidateId":"loop-red:health_critical","severity":"crit'
    'ical","confidence":"high","rationale":"Loop health is critical","taxonomyVersion":"v1","'
    'recommendedIntent":"cancel","suppressionScope":"cooldown","suppressed":true,"suppression'
    'Reason":"advisory_cooldown_active","suppressionSource":"policy.noiseControls.dedupeWindo'
    'wSeconds","cooldown":{"enabled":true,"windowSeconds":300,"active":true,"remainingSeconds'
    '":290,"lastUnsuppressedAt":"2026-11-22T02:18:15Z"},"autonomous":{"mode":"advisory","elig'
    'ible":false,"manualOnly":true,"reasons":["candidate_suppressed","policy_mode_not_guarded'
    '_auto"],"gatingReasons":["candidate_suppressed","policy_mode_not_guarded_auto"],"recomme'
    'ndedIntent":"cancel","gates":{"modeGuardedAuto":false,"suppressed":true,"categoryAllowed'
    '":true,"intentAllowed":true,"severityMeetsThreshold":true,"confidenceMeetsThreshold":tru'
    'e,"rolloutScopeAllowed":true,"rolloutCanarySelected":true},"safety":{"maxActionsPerRun":'
    '1,"maxActionsPerLoop":1,"cooldownSeconds":300,"killSwitch":false,"cooldown":{"active":fa'
    'lse,"remainingSeconds":0,"lastEligibleAt":null},"killSwitchActive":false,"runCapBlocked"'
    ':false,"loopCapBlocked":false},"rollout":{"canaryPercent":100,"scopeLoopIds":[],"selecto'
    'r":{"salt":"fleet-autonomous-rollout-v1","bucket":76,"inScope":true,"canarySelected":tru'
    'e,"inCohort":true},"pause":{"active":false,"reasons":[],"manual":false,"auto":{"enabled"'
    ':true,"active":false,"reasons":[],"lookbackExecutions":5,"minSampleSize":3,"ambiguityRat'
    'eThreshold":0.4,"failureRateThreshold":0.4,"metrics":{"windowExecutionCount":0,"attempte'
    'dCount":0,"executedCount":0,"ambiguousCount":0,"failedCount":0,"ambiguityRate":0,"failur'
    'eRate":0}}}}}}'
)

A2_AUTOPAUSE_CANDIDATE = (
    '{"loopId":"loop-red","category":"health_critical","signal":"health_critical","traceId":"'
    'trace-fleet-policy-rollout-auto-pause-1-loop-red","candidateId":"loop-red:health_critica'
    'l","severity":"critical","confidence":"high","rationale":"Loop health is critical","taxo'
    'nomyVersion":"v1","recommendedIntent":"cancel","suppressionScope":null,"suppressed":fals'
    'e,"suppressionReason":null,"suppressionSource":null,"cooldown":{"enabled":false,"windowS'
    'econds":0,"active":false,"remainingSeconds":0,"lastUnsuppressedAt":null},"autonomous":{"'
    'mode":"guarded_auto","eligible":false,"manualOnly":true,"reasons":["autonomous_autopause'
    '_ambiguous_spike","autonomous_rollout_paused_auto"],"gatingReasons":["autonomous_autopau'
    'se_ambiguous_spike","autonomous_rollout_paused_auto"],"recommendedIntent":"cancel","gate'
    's":{"modeGuardedAuto":true,"suppressed":false,"categoryAllowed":true,"intentAllowed":tru'
    'e,"severityMeetsThreshold":true,"confidenceMeetsThreshold":true,"rolloutScopeAllowed":tr'
    'ue,"rolloutCanarySelected":true},"safety":{"maxActionsPerRun":3,"maxActionsPerLoop":3,"c'
    'ooldownSeconds":0,"killSwitch":false,"cooldown":{"active":false,"remainingSeconds":0,"la'
    'stEligibleAt":null},"killSwitchActive":false,"runCapBlocked":false,"loopCapBlocked":fals'
    'e},"rollout":{"canaryPercent":100,"scopeLoopIds":[],"selector":{"salt":"fleet-autonomous'
    '-rollout-v1","bucket":76,"inScope":true,"canarySelected":true,"inCohort":true},"pause":{'
    '"active":true,"reasons":["autonomous_rollout_paused_auto"],"manual":false,"auto":{"enabl'
    'ed":true,"active":true,"reasons":["autonomous_autopause_ambiguous_spike"],"lookbackExecu'
    'tions":3,"minSampleSize":2,"ambiguityRateThreshold":0.4,"failureRateThreshold":0.8,"metr'
    'ics":{"windowExecutionCount":2,"attemptedCount":4,"executedCount":2,"ambiguousCount":2,"'
    'failedCount":0,"ambiguityRate":0.5,"failureRate":0}}}}}}'
)

A2_TELEMETRY_ROW = (
    '{"timestamp":"2026-11-22T02:18:15Z","category":"fleet_policy","fleetId":"fleet-policy","'
    'traceId":"trace-fleet-policy-1","mode":"advisory","summary":{"candidateCount":3,"unsuppr'
    'essedCount":1,"suppressedCount":2,"cooldownSuppressedCount":0,"autoEligibleCount":0,"man'
    'ualOnlyCount":1,"reasonCodes":["fleet_action_required","fleet_actions_policy_suppressed"'
    ',"fleet_actions_suppressed"],"summary":{"bySeverity":{"critical":2,"warning":1,"info":0}'
    ',"byConfidence":{"high":2,"medium":1,"low":0},"byCategory":{"health_degraded":1,"health_'
    'critical":1,"reconcile_failed":1},"bySuppressionReason":{"registry_policy_suppression":2'
    '},"byAutonomy":{"eligible":0,"manualOnly":1},"byAutonomyReason":{"policy_mode_not_guarde'
    'd_auto":1}},"noiseControls":{"dedupeWindowSeconds":300,"policyHistoryFile":"/abs/repo/.s'
    'uperloop/ops-manager/fleet/telemetry/policy-history.jsonl","handoffTelemetryFile":"/abs/'
    'repo/.superloop/ops-manager/fleet/telemetry/handoff.jsonl"},"autonomous":{"enabled":fals'
    'e,"governanceAuditFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/policy-governa'
    'nce.jsonl","governance":{"requiredForGuardedAuto":true,"authorityContextPresent":true},"'
    'controls":{"enabled":false,"allow":{"categories":["reconcile_failed","health_critical"],'
    '"intents":["cancel"]},"thresholds":{"minSeverity":"critical","minConfidence":"high"},"sa'
    'fety":{"maxActionsPerRun":1,"maxActionsPerLoop":1,"cooldownSeconds":300,"killSwitch":fal'
    'se},"governance":{},"rollout":{"canaryPercent":100,"scope":{"loopIds":[]},"selector":{"s'
    'alt":"fleet-autonomous-rollout-v1"},"pause":{"manual":false},"autoPause":{"enabled":true'
    ',"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,"failureRateThres'
    'hold":0.4}}},"rollout":{"canaryPercent":100,"scopeLoopIds":[],"selectorSalt":"fleet-auto'
    'nomous-rollout-v1","candidateBuckets":{"inScopeCount":3,"inCohortCount":3,"outOfCohortCo'
    'unt":0},"pause":{"active":false,"reasons":[],"manual":false,"auto":{"enabled":true,"acti'
    've":false,"reasons":[],"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold"'
    ':0.4,"failureRateThreshold":0.4,"metrics":{"windowExecutionCount":0,"attemptedCount":0,"'
    'executedCount":0,"ambiguousCount":0,"failedCount":0,"ambiguityRate":0,"failureRate":0}}}'
    "}}}}"
)

A3_GOVERNANCE_ROW = (
    '{"timestamp":"2026-11-22T02:18:37Z","category":"fleet_policy_governance","eventType":"au'
    'tonomous_policy_initialized","fleetId":"fleet-policy-rollout-auto-pause","traceId":"trac'
    'e-fleet-policy-rollout-auto-pause-1","mode":"guarded_auto","governance":{"actor":"ops-us'
    'er","approvalRef":"CAB-123","rationale":"dogfood guarded auto","changedAt":"2026-02-23T0'
    '0:00:00Z","reviewBy":"2026-12-31T00:00:00Z","reviewWindowDays":311,"requiredForGuardedAu'
    'to":true,"authorityContextPresent":true},"controls":{"enabled":true,"allow":{"categories'
    '":["health_critical"],"intents":["cancel"]},"thresholds":{"minSeverity":"critical","minC'
    'onfidence":"high"},"safety":{"maxActionsPerRun":3,"maxActionsPerLoop":3,"cooldownSeconds'
    '":0,"killSwitch":false},"governance":{"actor":"ops-user","approvalRef":"CAB-123","ration'
    'ale":"dogfood guarded auto","changedAt":"2026-02-23T00:00:00Z","reviewBy":"2026-12-31T00'
    ':00:00Z","reviewWindowDays":311},"rollout":{"canaryPercent":100,"scope":{"loopIds":[]},"'
    'selector":{"salt":"fleet-autonomous-rollout-v1"},"pause":{"manual":false},"autoPause":{"'
    'enabled":true,"lookbackExecutions":3,"minSampleSize":2,"ambiguityRateThreshold":0.4,"fai'
    'lureRateThreshold":0.8}}},"source":{"registryFile":"/abs/repo/.superloop/ops-manager/fle'
    'et/registry.v1.json","policyStateFile":"/abs/repo/.superloop/ops-manager/fleet/policy-st'
    'ate.json","governanceAuditFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/policy'
    '-governance.jsonl"}}'
)


A3_GOVERNANCE = {
    "actor": "ops-user",
    "approvalRef": "CAB-123",
    "rationale": "dogfood guarded auto",
    "changedAt": "2026-02-23T00:00:00Z",
    "reviewBy": "2026-12-31T00:00:00Z",
}


def _epoch(text: str) -> int:
    value = parse_ts(text)
    assert value is not None
    return value


def _advisory_a2() -> tuple[dict[str, Any], dict[str, Any]]:
    doc = registry_doc(
        ["loop-red", "loop-blue"],
        suppressions={"loop-red": ["reconcile_failed"], "*": ["health_degraded"]},
    )
    state = fleet_state(
        [
            result("loop-red", "failed", "critical", trace="trace-fleet-policy-1"),
            result("loop-blue", "success", "degraded", trace="trace-fleet-policy-1"),
        ],
        trace="trace-fleet-policy-1",
    )
    return doc, state


def test_golden_a2_advisory_first_run_telemetry_row() -> None:
    doc, state = _advisory_a2()
    now = _epoch("2026-11-22T02:18:15Z")
    ev = evaluate(doc, state, now=now, trace="trace-fleet-policy-1")
    assert dumps_compact(ev.telemetry_row) == A2_TELEMETRY_ROW


def test_golden_a2_cooldown_suppressed_candidate() -> None:
    doc, state = _advisory_a2()
    first = evaluate(doc, state, now=_epoch("2026-11-22T02:18:15Z"), trace="trace-fleet-policy-1")
    second = evaluate(
        doc,
        state,
        now=_epoch("2026-11-22T02:18:25Z"),
        trace="trace-fleet-policy-1",
        history=first.history_rows,
    )
    candidate = by_id(second)["loop-red:health_critical"]
    assert dumps_compact(candidate) == A2_COOLDOWN_CANDIDATE


def test_golden_a2_autopause_candidate_and_a3_governance_row() -> None:
    now = _epoch("2026-11-22T02:18:37Z")
    autonomous = {
        "allow": {"categories": ["health_critical"], "intents": ["cancel"]},
        "safety": {"maxActionsPerRun": 3, "maxActionsPerLoop": 3, "cooldownSeconds": 0},
        "governance": A3_GOVERNANCE,
        "rollout": {
            "autoPause": {
                "lookbackExecutions": 3,
                "minSampleSize": 2,
                "ambiguityRateThreshold": 0.4,
                "failureRateThreshold": 0.8,
            }
        },
    }
    doc = registry_doc(
        ["loop-red"],
        mode="guarded_auto",
        fleet_id="fleet-policy-rollout-auto-pause",
        autonomous=autonomous,
        dedupe=0,
        now=now,
    )
    trace = "trace-fleet-policy-rollout-auto-pause-1"
    state = fleet_state(
        [result("loop-red", "success", "critical", trace=trace)],
        fleet_id="fleet-policy-rollout-auto-pause",
        trace=trace,
    )
    handoff = [
        {
            "timestamp": iso(-60 + i, now),
            "category": "fleet_handoff_execute",
            "execution": {
                "mode": "autonomous",
                "requestedIntentCount": 2,
                "executedCount": 1,
                "ambiguousCount": 1,
            },
        }
        for i in range(2)
    ]
    ev = evaluate(doc, state, now=now, trace=trace, handoff=handoff)
    assert dumps_compact(ev.state["candidates"][0]) == A2_AUTOPAUSE_CANDIDATE
    assert [dumps_compact(row) for row in ev.audit_rows] == [A3_GOVERNANCE_ROW]
    assert ev.state["reasonCodes"] == [
        "fleet_action_required",
        "fleet_auto_candidates_autopause_triggered",
        "fleet_auto_candidates_blocked",
        "fleet_auto_candidates_paused",
    ]


def test_policy_state_key_order() -> None:
    doc, state = _advisory_a2()
    ev = evaluate(doc, state)
    assert list(ev.state) == [
        "schemaVersion",
        "updatedAt",
        "fleetId",
        "traceId",
        "mode",
        "fleetStatus",
        "source",
        "taxonomy",
        "noiseControls",
        "autonomous",
        "evaluatedLoopCount",
        "candidateCount",
        "unsuppressedCount",
        "suppressedCount",
        "cooldownSuppressedCount",
        "autoEligibleCount",
        "manualOnlyCount",
        "candidates",
        "summary",
        "suppressionState",
        "reasonCodes",
    ]
    assert list(ev.state["autonomous"]) == [
        "enabled",
        "governanceAuditFile",
        "governance",
        "controls",
        "rollout",
    ]
    assert ev.state["suppressionState"] == {
        "suppressions": {"loop-red": ["reconcile_failed"], "*": ["health_degraded"]},
        "precedence": ["loop", "global", "cooldown"],
        "allowedCategories": ["reconcile_failed", "health_critical", "health_degraded"],
    }
    assert ev.state["summary"]["byCategory"] == {
        "health_degraded": 1,
        "health_critical": 1,
        "reconcile_failed": 1,
    }
    assert list(ev.state["summary"]["byCategory"]) == [
        "health_degraded",
        "health_critical",
        "reconcile_failed",
    ]


# --- CLI (in process) -----------------------------------------------------------------------------


class FleetRepo:
    """A temp repo with a fleet registry and state, and a way to run ``fleet-policy``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = FleetPaths.for_repo(root)

    def registry(self, doc: Mapping[str, Any]) -> FleetRepo:
        ff.write_registry(self.root, doc)
        return self

    def state(self, state: Mapping[str, Any]) -> FleetRepo:
        ff.write_fleet_state(self.root, state)
        return self

    def append(self, path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")

    def lines(self, path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @property
    def audit(self) -> list[dict[str, Any]]:
        return self.lines(self.paths.policy_governance_file)


def run_policy(
    capsys: pytest.CaptureFixture[str], repo: FleetRepo, *args: str
) -> tuple[int, Any, str]:
    """Run ``fleet-policy --repo <repo> ...``; return (exit, parsed stdout or None, stderr)."""
    code = main(["fleet-policy", "--repo", str(repo.root), *args])
    captured = capsys.readouterr()
    out = json.loads(captured.out) if code == 0 and captured.out.strip() else None
    return code, out, captured.err


@pytest.fixture
def repo(tmp_path: Path) -> FleetRepo:
    return FleetRepo(tmp_path)


def test_cli_r_pol_1_advisory_suppressions(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    code, out, err = run_policy(capsys, repo, "--trace-id", "trace-fleet-policy-1")
    assert (code, err) == (0, "")
    assert (out["candidateCount"], out["unsuppressedCount"], out["suppressedCount"]) == (3, 1, 2)
    assert {"fleet_action_required", "fleet_actions_suppressed"} <= set(out["reasonCodes"])
    # the file is the compact stdout document
    assert json.loads(repo.paths.policy_state_file.read_text()) == out
    assert repo.paths.policy_state_file.read_text().count("\n") == 1
    assert out["source"] == {
        "fleetStateFile": str(repo.paths.state_file),
        "registryFile": str(repo.paths.registry_file),
    }
    assert len(repo.lines(repo.paths.policy_history_file)) == 3
    assert len(repo.lines(repo.paths.policy_telemetry_file)) == 1
    assert [row["eventType"] for row in repo.audit] == ["autonomous_policy_initialized"]


def test_cli_r_pol_2_dedupe_across_runs(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.registry(
        registry_doc(
            ["loop-red", "loop-blue", "loop-green"],
            suppressions={"*": ["health_critical"], "loop-red": ["health_critical"]},
        )
    ).state(
        fleet_state(
            [
                result("loop-red", health="critical"),
                result("loop-blue", health="critical"),
                result("loop-green", health="degraded"),
            ]
        )
    )
    _, first, _ = run_policy(capsys, repo, "--dedupe-window-seconds", "3600")
    scopes = {c["candidateId"]: c["suppressionScope"] for c in first["candidates"]}
    assert scopes == {
        "loop-blue:health_critical": "global",
        "loop-green:health_degraded": None,
        "loop-red:health_critical": "loop",
    }
    assert first["noiseControls"]["dedupeWindowSeconds"] == 3600
    _, second, _ = run_policy(capsys, repo, "--dedupe-window-seconds", "3600")
    green = {c["loopId"]: c for c in second["candidates"]}["loop-green"]
    assert (green["suppressionReason"], green["suppressionScope"]) == (
        "advisory_cooldown_active",
        "cooldown",
    )
    assert "fleet_actions_deduped" in second["reasonCodes"]
    assert second["cooldownSuppressedCount"] == 1
    assert len(repo.lines(repo.paths.policy_history_file)) >= 6


def test_cli_r_pol_3_guarded_auto_allowlist(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.registry(
        registry_doc(["loop-red"], mode="guarded_auto", autonomous=guarded(["reconcile_failed"]))
    ).state(fleet_state([result("loop-red", "failed", "critical")]))
    _, out, _ = run_policy(capsys, repo)
    assert (
        out["mode"],
        out["candidateCount"],
        out["autoEligibleCount"],
        out["manualOnlyCount"],
    ) == (
        "guarded_auto",
        2,
        1,
        1,
    )
    cands = {c["category"]: c for c in out["candidates"]}
    assert cands["reconcile_failed"]["autonomous"]["eligible"] is True
    assert cands["health_critical"]["autonomous"]["manualOnly"] is True
    assert "category_not_allowlisted" in cands["health_critical"]["autonomous"]["reasons"]
    assert "fleet_auto_candidates_eligible" in out["reasonCodes"]
    assert isinstance(repo.lines(repo.paths.policy_history_file)[-1]["autonomousEligible"], bool)


def test_cli_r_pol_4_and_kill_switch_drill(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.registry(
        registry_doc(
            ["loop-red"],
            mode="guarded_auto",
            autonomous=guarded(["health_critical"], kill=True),
            dedupe=0,
        )
    ).state(fleet_state([result("loop-red", "success", "critical")]))
    _, out, _ = run_policy(capsys, repo)
    assert (out["autoEligibleCount"], out["manualOnlyCount"]) == (0, 1)
    assert out["candidates"][0]["autonomous"]["reasons"] == ["autonomous_kill_switch_enabled"]
    assert "fleet_auto_kill_switch_enabled" in out["reasonCodes"]


def test_cli_r_pol_6_autonomous_cooldown_from_history(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.registry(
        registry_doc(["loop-a"], mode="guarded_auto", autonomous=guarded(cooldown=600), dedupe=0)
    ).state(fleet_state([result("loop-a", health="critical")]))
    repo.append(
        repo.paths.policy_history_file,
        [
            {
                "timestamp": iso(-60),
                "candidateId": "loop-a:health_critical",
                "autonomousEligible": True,
            }
        ],
    )
    _, out, _ = run_policy(capsys, repo)
    assert out["autoEligibleCount"] == 0
    assert "autonomous_cooldown_active" in out["candidates"][0]["autonomous"]["reasons"]
    assert "fleet_auto_candidates_safety_blocked" in out["reasonCodes"]


def test_cli_r_pol_7_cohort_stable_across_runs(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = {
        "canaryPercent": 50,
        "scope": {"loopIds": ["loop-2", "loop-1"]},
        "selector": {"salt": "cohort-seed-v1"},
    }
    repo.registry(
        registry_doc(
            ["loop-1", "loop-2", "loop-scope-miss"],
            mode="guarded_auto",
            autonomous=guarded(["health_critical"], run=10, loop=10, rollout=rollout),
            dedupe=0,
        )
    ).state(
        fleet_state(
            [result(loop, health="critical") for loop in ("loop-1", "loop-2", "loop-scope-miss")]
        )
    )
    _, first, _ = run_policy(capsys, repo)
    cands = {c["loopId"]: c["autonomous"] for c in first["candidates"]}
    assert cands["loop-2"]["eligible"] is True
    assert cands["loop-2"]["rollout"]["selector"]["bucket"] == 15
    assert cands["loop-1"]["manualOnly"] is True
    assert cands["loop-1"]["rollout"]["selector"]["bucket"] == 55
    assert "autonomous_rollout_canary_excluded" in cands["loop-1"]["reasons"]
    assert "autonomous_rollout_scope_excluded" in cands["loop-scope-miss"]["reasons"]
    assert "autonomous_rollout_canary_excluded" not in cands["loop-scope-miss"]["reasons"]
    assert "fleet_auto_candidates_rollout_gated" in first["reasonCodes"]

    def cohort(doc: Any) -> list[tuple[str, int, bool]]:
        return [
            (
                c["candidateId"],
                c["autonomous"]["rollout"]["selector"]["bucket"],
                c["autonomous"]["rollout"]["selector"]["inCohort"],
            )
            for c in doc["candidates"]
        ]

    _, second, _ = run_policy(capsys, repo)
    assert cohort(first) == cohort(second)


def test_cli_r_pol_8_manual_pause(repo: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.registry(
        registry_doc(
            ["loop-red"],
            mode="guarded_auto",
            autonomous=guarded(
                ["health_critical"], rollout={"canaryPercent": 100, "pause": {"manual": True}}
            ),
            dedupe=0,
        )
    ).state(fleet_state([result("loop-red", health="critical")]))
    _, out, _ = run_policy(capsys, repo)
    assert (out["autoEligibleCount"], out["manualOnlyCount"]) == (0, 1)
    assert out["candidates"][0]["autonomous"]["reasons"] == ["autonomous_rollout_paused_manual"]
    assert "fleet_auto_candidates_paused" in out["reasonCodes"]
    assert out["autonomous"]["rollout"]["pause"]["active"] is True


def _execute_rows(n: int, **execution: int) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": iso(-100 + i),
            "category": "fleet_handoff_execute",
            "execution": {"mode": "autonomous", **execution},
        }
        for i in range(n)
    ]


def test_cli_r_pol_9_autopause_ambiguity(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_pause = {
        "lookbackExecutions": 3,
        "minSampleSize": 2,
        "ambiguityRateThreshold": 0.4,
        "failureRateThreshold": 0.8,
    }
    repo.registry(
        registry_doc(
            ["loop-red"],
            mode="guarded_auto",
            autonomous=guarded(["health_critical"], rollout={"autoPause": auto_pause}),
            dedupe=0,
        )
    ).state(fleet_state([result("loop-red", health="critical")]))
    repo.append(
        repo.paths.handoff_telemetry_file,
        _execute_rows(2, requestedIntentCount=2, executedCount=1, ambiguousCount=1),
    )
    _, out, _ = run_policy(capsys, repo)
    auto = out["autonomous"]["rollout"]["pause"]["auto"]
    assert out["autoEligibleCount"] == 0 and auto["active"] is True
    assert (auto["metrics"]["attemptedCount"], auto["metrics"]["ambiguityRate"]) == (4, 0.5)
    assert {"autonomous_rollout_paused_auto", "autonomous_autopause_ambiguous_spike"} <= set(
        out["candidates"][0]["autonomous"]["reasons"]
    )
    assert {"fleet_auto_candidates_paused", "fleet_auto_candidates_autopause_triggered"} <= set(
        out["reasonCodes"]
    )


def test_cli_sprite_outage_drill_failure_spike(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_pause = {
        "lookbackExecutions": 3,
        "minSampleSize": 2,
        "ambiguityRateThreshold": 0.9,
        "failureRateThreshold": 0.5,
    }
    repo.registry(
        registry_doc(
            ["loop-sprite"],
            mode="guarded_auto",
            autonomous=guarded(["reconcile_failed"], rollout={"autoPause": auto_pause}),
            dedupe=0,
        )
    ).state(fleet_state([result("loop-sprite", "failed", "degraded")]))
    repo.append(
        repo.paths.handoff_telemetry_file, _execute_rows(2, requestedIntentCount=1, failedCount=1)
    )
    code = main(["fleet-policy", "--repo", str(repo.root)])
    text = capsys.readouterr().out
    assert code == 0
    assert '"failureRate":1}' in text  # an integral rate prints as 1, not 1.0
    out = json.loads(text)
    assert out["candidateCount"] == 2
    auto = out["autonomous"]["rollout"]["pause"]["auto"]
    assert auto["active"] is True and auto["metrics"]["attemptedCount"] == 2
    for candidate in out["candidates"]:
        assert {"autonomous_rollout_paused_auto", "autonomous_autopause_failure_spike"} <= set(
            candidate["autonomous"]["reasons"]
        )
    assert {"fleet_auto_candidates_paused", "fleet_auto_candidates_autopause_triggered"} <= set(
        out["reasonCodes"]
    )


def test_cli_r_gov_1_and_2_audit_stream(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    auto = guarded(["health_critical"], run=1)
    auto["governance"] = ff.governance(approval_ref="CAB-301")
    repo.registry(registry_doc(["loop-red"], mode="guarded_auto", autonomous=auto)).state(
        fleet_state([result("loop-red", health="critical")])
    )
    run_policy(capsys, repo)
    assert [r["eventType"] for r in repo.audit] == ["autonomous_policy_initialized"]
    assert repo.audit[0]["controls"]["safety"]["maxActionsPerRun"] == 1
    assert "previousMode" not in repo.audit[0]
    run_policy(capsys, repo)
    assert len(repo.audit) == 1  # unchanged registry: idempotent

    auto["governance"] = ff.governance(approval_ref="CAB-302")
    auto["safety"]["maxActionsPerRun"] = 2
    repo.registry(registry_doc(["loop-red"], mode="guarded_auto", autonomous=auto))
    run_policy(capsys, repo, "--trace-id", "trace-gov-2")
    last = repo.audit[-1]
    assert (len(repo.audit), last["eventType"], last["traceId"]) == (
        2,
        "autonomous_policy_mutated",
        "trace-gov-2",
    )
    assert (last["previousGovernance"]["approvalRef"], last["governance"]["approvalRef"]) == (
        "CAB-301",
        "CAB-302",
    )
    assert (
        last["previousControls"]["safety"]["maxActionsPerRun"],
        last["controls"]["safety"]["maxActionsPerRun"],
    ) == (1, 2)
    run_policy(capsys, repo)
    assert len(repo.audit) == 2

    before = repo.paths.policy_governance_file.read_bytes()
    repo.registry(registry_doc(["loop-red"], mode="advisory"))
    run_policy(capsys, repo)
    last = repo.audit[-1]
    assert (len(repo.audit), last["eventType"], last["previousMode"], last["mode"]) == (
        3,
        "autonomous_mode_toggled",
        "guarded_auto",
        "advisory",
    )
    # append-only: what was there is untouched
    assert repo.paths.policy_governance_file.read_bytes().startswith(before)


@pytest.mark.parametrize("record", ["left behind", "lost (an older version's crash)"])
def test_cli_audit_not_duplicated_after_crash_before_projection(
    repo: FleetRepo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    record: str,
) -> None:
    auto = guarded(["health_critical"])
    repo.registry(registry_doc(["loop-red"], mode="guarded_auto", autonomous=auto)).state(
        fleet_state([result("loop-red", health="critical")])
    )
    run_policy(capsys, repo)
    auto["governance"] = ff.governance(approval_ref="CAB-999")
    repo.registry(registry_doc(["loop-red"], mode="guarded_auto", autonomous=auto))
    state_before = repo.paths.policy_state_file.read_bytes()

    import ops_manager.store._commit as store_commit

    def crash(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    # the run commits, its rows are appended, then it dies replacing policy-state.json
    monkeypatch.setattr(store_commit, "_replace", crash)
    code, _, err = run_policy(capsys, repo)
    assert code == 1 and "disk full" in err
    assert [r["eventType"] for r in repo.audit] == [
        "autonomous_policy_initialized",
        "autonomous_policy_mutated",
    ]
    assert repo.paths.policy_state_file.read_bytes() == state_before
    assert repo.paths.commit_record_file.is_file()
    monkeypatch.undo()
    if record != "left behind":
        # a state without the audit row's projection and nothing to finish it: the audit
        # stream's last row is what keeps the event from being appended twice
        repo.paths.commit_record_file.unlink()
    code, out, _ = run_policy(capsys, repo)
    assert code == 0 and out["autonomous"]["governance"]["approvalRef"] == "CAB-999"
    assert len(repo.audit) == 2  # the recorded event is not appended twice
    assert not repo.paths.commit_record_file.exists()


def test_cli_expired_governance_fails_closed(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    auto = guarded()
    auto["governance"] = ff.governance(changed_days_ago=2, review_in_days=-1)
    repo.registry(registry_doc(["loop-red"], mode="guarded_auto", autonomous=auto)).state(
        fleet_state([result("loop-red", health="critical")])
    )
    code, _, err = run_policy(capsys, repo)
    assert code == 1
    expected = "reviewBy must be in the future when policy.mode is guarded_auto"
    assert f"policy.autonomous.governance.{expected}" in err
    assert not repo.paths.policy_state_file.exists()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("no-state", [], "error: fleet state file not found: "),
        ("bad-state", [], "error: invalid fleet state JSON: "),
        ("bad-registry", [], "error: invalid fleet registry: "),
        ("bad-history", [], "error: invalid policy history JSONL: "),
        ("bad-handoff", [], "error: invalid handoff telemetry JSONL: "),
        ("bad-policy-state", [], "error: invalid existing policy state JSON: "),
        (
            "ok",
            ["--dedupe-window-seconds", "-1"],
            "error: --dedupe-window-seconds must be a non-negative integer",
        ),
        (
            "ok",
            ["--dedupe-window-seconds", "1.5"],
            "error: --dedupe-window-seconds must be a non-negative integer",
        ),
        ("ok", ["--bogus"], "error: unknown argument: --bogus"),
    ],
)
def test_cli_errors(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str], setup: str, args: list[str], message: str
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc)
    if setup != "no-state":
        repo.state(state)
    if setup == "bad-state":
        repo.paths.state_file.write_text("{not json")
    if setup == "bad-registry":
        repo.registry({"schemaVersion": "v2", "loops": []})
    if setup == "bad-history":
        repo.append(repo.paths.policy_history_file, [{"candidateId": "x"}])
        with repo.paths.policy_history_file.open("a") as handle:
            handle.write("{oops\n")
    if setup == "bad-handoff":
        repo.paths.handoff_telemetry_file.parent.mkdir(parents=True, exist_ok=True)
        repo.paths.handoff_telemetry_file.write_text("nope\n")
    if setup == "bad-policy-state":
        repo.paths.policy_state_file.write_text("[1,")
    code, _, err = run_policy(capsys, repo, *args)
    assert code == 1
    assert err.startswith(message), err
    assert "Traceback" not in err
    if setup != "bad-policy-state":
        assert not repo.paths.policy_state_file.exists()
    assert not repo.paths.policy_telemetry_file.exists()


def test_cli_requires_repo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet-policy"]) == 1
    assert capsys.readouterr().err == "error: --repo is required\n"


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet-policy", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--registry-file",
        "--fleet-state-file",
        "--policy-state-file",
        "--governance-audit-file",
        "--handoff-telemetry-file",
        "--policy-telemetry-file",
        "--policy-history-file",
        "--dedupe-window-seconds",
        "--trace-id",
        "--pretty",
    ):
        assert flag in out


def test_cli_torn_history_tail_is_ignored_then_cut(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    torn = '{"candidateId":"loop-red:health_critical","timest'
    repo.paths.policy_history_file.parent.mkdir(parents=True)
    repo.paths.policy_history_file.write_text(torn)
    code, out, err = run_policy(capsys, repo)
    assert code == 0 and out["unsuppressedCount"] == 1
    assert err == (
        f"warning: dropped an unterminated final line ({len(torn)} bytes) of "
        f"{repo.paths.policy_history_file}\n"
    )
    assert len(repo.lines(repo.paths.policy_history_file)) == 3  # every line is a record


def test_history_index_is_incremental_and_rebuilt_when_stale(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    history = repo.paths.policy_history_file
    index_file = history_index_file(history)
    for _ in range(3):
        assert run_policy(capsys, repo)[0] == 0
    assert index_file.exists()
    full = index_history(repo.lines(history))
    index, position = read_history_index(history)
    assert index == full
    assert position.byte_offset == history.stat().st_size

    # only bytes after the cached position are read: an early line made unparseable in
    # place (same size, last line intact) goes unnoticed ...
    data = bytearray(history.read_bytes())
    data[0:1] = b"X"
    history.write_bytes(bytes(data))
    assert read_history_index(history)[0] == full
    # ... while without the cache the whole stream is read and the bad line reported
    index_file.unlink()
    with pytest.raises(OpsError, match=r"invalid policy history JSONL: .* \(line 1\)"):
        read_history_index(history)

    # a truncated (here: emptied) stream invalidates the cache: rebuilt from scratch
    history.write_text("")
    assert run_policy(capsys, repo)[0] == 0
    _, out, _ = run_policy(capsys, repo)
    assert out["cooldownSuppressedCount"] == 1
    history.write_text("")
    _, out, _ = run_policy(capsys, repo)
    assert out["cooldownSuppressedCount"] == 0
    # a malformed cache is ignored, never trusted
    index_file.write_text('{"schemaVersion":"v1","position":{"byteOffset":"x"}}')
    assert read_history_index(history)[0] == index_history(repo.lines(history))


@pytest.mark.parametrize(
    ("flag", "state_trace", "env", "expected"),
    [
        ("from-flag", "from-state", "from-env", "from-flag"),
        (None, "from-state", "from-env", "from-state"),
        (None, "", "from-env", "from-env"),
        (None, None, None, None),
    ],
)
def test_cli_trace_id_precedence(
    repo: FleetRepo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    state_trace: str | None,
    env: str | None,
    expected: str | None,
) -> None:
    doc, state = _advisory_a2()
    state["traceId"] = state_trace
    repo.registry(doc).state(state)
    if env is None:
        monkeypatch.delenv("OPS_MANAGER_TRACE_ID", raising=False)
    else:
        monkeypatch.setenv("OPS_MANAGER_TRACE_ID", env)
    _, out, _ = run_policy(capsys, repo, *(["--trace-id", flag] if flag else []))
    if expected is None:
        assert len(out["traceId"]) == 36 and out["traceId"] == out["traceId"].lower()
    else:
        assert out["traceId"] == expected


def test_cli_pretty_and_file_is_compact(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    assert main(["fleet-policy", "--repo", str(repo.root), "--pretty"]) == 0
    text = capsys.readouterr().out
    assert text.startswith('{\n  "schemaVersion": "v1",\n')
    assert json.loads(text) == json.loads(repo.paths.policy_state_file.read_text())


def test_cli_relative_override_paths_are_echoed_verbatim(
    repo: FleetRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    monkeypatch.chdir(repo.root)
    _, out, _ = run_policy(
        capsys,
        repo,
        "--policy-history-file",
        "custom/history.jsonl",
        "--governance-audit-file",
        "custom/audit.jsonl",
        "--policy-state-file",
        "custom/policy.json",
    )
    assert out["noiseControls"]["policyHistoryFile"] == "custom/history.jsonl"
    assert out["autonomous"]["governanceAuditFile"] == "custom/audit.jsonl"
    assert (repo.root / "custom/history.jsonl").exists()
    assert (repo.root / "custom/policy.json").exists()
    assert (
        json.loads((repo.root / "custom/audit.jsonl").read_text())["source"]["policyStateFile"]
        == "custom/policy.json"
    )


def test_concurrent_policy_runs_serialize_on_the_fleet_lock(repo: FleetRepo) -> None:
    doc, state = _advisory_a2()
    repo.registry(doc).state(state)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fleet_policy(repo.root, files=FleetPolicyFiles())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # one initialisation: every later run saw the previous run's policy state
    assert [r["eventType"] for r in repo.audit] == ["autonomous_policy_initialized"]
    history = repo.lines(repo.paths.policy_history_file)
    assert len(history) == 18
    # exactly one run emitted loop-red:health_critical unsuppressed; the rest were deduped
    red = [r for r in history if r["candidateId"] == "loop-red:health_critical"]
    assert sum(not r["suppressed"] for r in red) == 1
    assert len(repo.lines(repo.paths.policy_telemetry_file)) == 6
