"""Escalation rows and their dedupe decisions (loop.md §3.8.7, Appendix A/C/D; DECISIONS Q-18)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import parse_ts
from ops_manager.reducers.escalations import (
    divergence_escalation,
    divergence_escalation_decision,
    health_escalation,
    health_escalation_decision,
    ordering_drift_escalation,
    profile_drift_escalation,
)

OPS = "<R>/.superloop/ops-manager/demo-loop"


def epoch(text: str) -> int:
    """Parse a contract timestamp that the test knows to be valid."""
    value = parse_ts(text)
    assert value is not None, text
    return value


NOW_A = epoch("2026-11-22T02:17:19Z")
NOW_C = epoch("2026-11-22T02:17:30Z")
NOW_D = epoch("2026-11-22T02:19:21Z")

ROW_A_HEALTH = (
    '{"timestamp":"2026-11-22T02:17:19Z","loopId":"demo-loop","traceId":"trace-1","category":'
    '"health_critical","transport":"local","ingestStatus":"success","stateFile":"<R>/.superlo'
    'op/ops-manager/demo-loop/state.json","cursorFile":"<R>/.superloop/ops-manager/demo-loop/'
    'cursor.json","healthFile":"<R>/.superloop/ops-manager/demo-loop/health.json","healthStat'
    'us":"critical","reasonCodes":["ingest_stale"],"reasons":[{"code":"ingest_stale","severit'
    'y":"critical","metric":"ingestLagSeconds","observed":"23559433","threshold":"900"}]}'
)

ROW_C_HEALTH = (
    '{"timestamp":"2026-11-22T02:17:30Z","loopId":"demo-loop","traceId":"tf-1","category":"he'
    'alth_degraded","transport":"local","ingestStatus":"failed","failureCode":"snapshot_unava'
    'ilable","stateFile":"<R>/.superloop/ops-manager/demo-loop/state.json","cursorFile":"<R>/'
    '.superloop/ops-manager/demo-loop/cursor.json","healthFile":"<R>/.superloop/ops-manager/d'
    'emo-loop/health.json","healthStatus":"degraded","reasonCodes":["transport_unreachable"],'
    '"reasons":[{"code":"transport_unreachable","severity":"degraded","metric":"ingestStatus"'
    ',"observed":"failed","threshold":"success"}]}'
)

ROW_D_DIVERGENCE = (
    '{"timestamp":"2026-11-22T02:19:21Z","loopId":"demo-loop","traceId":"td","category":"dive'
    'rgence_detected","transport":"local","stateFile":"<R>/.superloop/ops-manager/demo-loop/s'
    'tate.json","cursorFile":"<R>/.superloop/ops-manager/demo-loop/cursor.json","divergenceFl'
    'ags":{"activeMismatch":false,"approvalCompletionConflict":false,"cursorRegression":true}'
    ',"state":{"transition":{"previousState":"running","triggeringSignal":"event:loop_start",'
    '"currentState":"running","confidence":"low"},"projection":{"status":"running","hasPendin'
    'gApproval":false,"completionOk":false,"gates":{"tests":"ok","validation":"ok","prerequis'
    'ites":"ok","checklist":"ok","evidence":"skipped","approval":"none"},"stuck":{"streak":0,'
    '"threshold":3},"active":true,"lastEventName":"loop_start","lastEventAt":"2026-02-22T10:0'
    '0:00Z"},"cursor":{"eventLineOffset":1,"eventLineCount":1}}}'
)

ROW_D_ORDERING = (
    '{"timestamp":"2026-11-22T02:19:21Z","loopId":"demo-loop","traceId":"td","category":"orde'
    'ring_drift_detected","transport":"local","reasonCode":"ordering_drift_detected","stateFi'
    'le":"<R>/.superloop/ops-manager/demo-loop/state.json","sequenceStateFile":"<R>/.superloo'
    'p/ops-manager/demo-loop/sequence-state.json","sequenceTelemetryFile":"<R>/.superloop/ops'
    '-manager/demo-loop/telemetry/sequence.jsonl","sequence":{"status":"ordering_drift_detect'
    'ed","driftActive":true,"violations":["event_sequence_regression","snapshot_sequence_regr'
    'ession"],"snapshot":{"previous":2,"current":1,"monotonic":false,"regressed":true,"missin'
    'g":false},"events":{"ingestedCount":1,"previousLast":2,"first":1,"last":1,"monotonicWith'
    'inBatch":true,"monotonicAcrossBatches":false,"regressed":true,"missing":false}}}'
)

ROW_D_HEALTH = (
    '{"timestamp":"2026-11-22T02:19:21Z","loopId":"demo-loop","traceId":"td","category":"heal'
    'th_degraded","transport":"local","ingestStatus":"success","stateFile":"<R>/.superloop/op'
    's-manager/demo-loop/state.json","cursorFile":"<R>/.superloop/ops-manager/demo-loop/curso'
    'r.json","healthFile":"<R>/.superloop/ops-manager/demo-loop/health.json","healthStatus":"'
    'degraded","reasonCodes":["divergence_detected","ordering_drift_detected","runtime_heartb'
    'eat_stale"],"reasons":[{"code":"divergence_detected","severity":"degraded","metric":"div'
    'ergence.any","observed":"true","threshold":"false"},{"code":"ordering_drift_detected","s'
    'everity":"degraded","metric":"sequence.status","observed":"ordering_drift_detected","thr'
    'eshold":"ok"},{"code":"runtime_heartbeat_stale","severity":"degraded","metric":"heartbea'
    'tLagSeconds","observed":"217477158","threshold":"1"}]}'
)


def health_row(now: int, trace: str, ingest: str, code: str | None, health: dict[str, Any]) -> str:
    return dumps_compact(
        health_escalation(
            now=now,
            loop_id="demo-loop",
            trace_id=trace,
            transport="local",
            ingest_status=ingest,
            failure_code=code,
            state_file=f"{OPS}/state.json",
            cursor_file=f"{OPS}/cursor.json",
            health_file=f"{OPS}/health.json",
            health=health,
        )
    )


def _health_of(row: str) -> dict[str, Any]:
    parsed = json.loads(row)
    # a full health object carries more keys; the row copies only these three
    return {
        "schemaVersion": "v1",
        "status": parsed["healthStatus"],
        "reasonCodes": parsed["reasonCodes"],
        "reasons": parsed["reasons"],
        "metrics": {},
    }


def test_appendix_a_health_row() -> None:
    assert health_row(NOW_A, "trace-1", "success", None, _health_of(ROW_A_HEALTH)) == ROW_A_HEALTH


def test_scenario_c_failed_health_row() -> None:
    row = health_row(NOW_C, "tf-1", "failed", "snapshot_unavailable", _health_of(ROW_C_HEALTH))
    assert row == ROW_C_HEALTH


def test_appendix_d_rows_in_order() -> None:
    div = json.loads(ROW_D_DIVERGENCE)
    state = {
        "schemaVersion": "v1",
        "transition": div["state"]["transition"],
        "projection": div["state"]["projection"],
        "cursor": div["state"]["cursor"],
        "divergence": {"any": True, "flags": div["divergenceFlags"]},
        "evidence": {},
    }
    got_div = divergence_escalation(
        now=NOW_D,
        loop_id="demo-loop",
        trace_id="td",
        transport="local",
        state_file=f"{OPS}/state.json",
        cursor_file=f"{OPS}/cursor.json",
        state=state,
    )
    assert dumps_compact(got_div) == ROW_D_DIVERGENCE

    seq = json.loads(ROW_D_ORDERING)["sequence"]
    sequence_state = {
        "schemaVersion": "v1",
        "updatedAt": "2026-11-22T02:19:19Z",
        "loopId": "demo-loop",
        "traceId": "td",
        "transport": "local",
        "status": seq["status"],
        "reasonCode": "ordering_drift_detected",
        "driftActive": seq["driftActive"],
        "violations": seq["violations"],
        "snapshot": seq["snapshot"],
        "events": seq["events"],
        "transition": {},
    }
    got_seq = ordering_drift_escalation(
        now=NOW_D,
        loop_id="demo-loop",
        trace_id="td",
        transport="local",
        state_file=f"{OPS}/state.json",
        sequence_state_file=f"{OPS}/sequence-state.json",
        sequence_telemetry_file=f"{OPS}/telemetry/sequence.jsonl",
        sequence=sequence_state,
    )
    assert dumps_compact(got_seq) == ROW_D_ORDERING

    assert health_row(NOW_D, "td", "success", None, _health_of(ROW_D_HEALTH)) == ROW_D_HEALTH


def test_divergence_row_defaults_and_null_trace() -> None:
    row = divergence_escalation(
        now=NOW_D,
        loop_id="l",
        trace_id=None,
        transport="sprite_service",
        state_file="s",
        cursor_file="c",
        state={},
    )
    assert row["traceId"] is None  # not stripped
    assert row["divergenceFlags"] == {}
    assert row["state"] == {"transition": {}, "projection": {}, "cursor": {}}


def test_ordering_row_default_reason_and_strip() -> None:
    row = ordering_drift_escalation(
        now=NOW_D,
        loop_id="l",
        trace_id=None,
        transport="local",
        state_file="s",
        sequence_state_file="q",
        sequence_telemetry_file="t",
        sequence={"status": "ordering_drift_detected"},
    )
    assert "traceId" not in row
    assert row["reasonCode"] == "ordering_drift_detected"
    assert row["sequence"] == {
        "status": "ordering_drift_detected",
        "driftActive": None,
        "violations": None,
        "snapshot": None,
        "events": None,
    }


def test_profile_drift_row_shape() -> None:
    row = profile_drift_escalation(
        now=NOW_D,
        loop_id="demo-loop",
        trace_id="t",
        transport="local",
        state_file="s",
        drift_state_file="d",
        drift_history_file="h",
        drift={
            "status": "drift_active",
            "reasonCode": "profile_drift_detected",
            "mismatchStreak": 3,
        },
    )
    assert list(row) == [
        "timestamp",
        "loopId",
        "traceId",
        "category",
        "transport",
        "stateFile",
        "driftStateFile",
        "driftHistoryFile",
        "reasonCode",
        "drift",
    ]
    assert row["category"] == "profile_drift_detected"
    assert row["drift"] == {
        "status": "drift_active",
        "appliedProfile": None,
        "recommendedProfile": None,
        "recommendationConfidence": None,
        "mismatchStreak": 3,
        "requiredStreak": 0,
        "action": None,
        "rationale": None,
    }


# --- decisions ------------------------------------------------------------------------------


def h(status: str, codes: list[str]) -> dict[str, Any]:
    return {"status": status, "reasonCodes": codes}


@pytest.mark.parametrize(
    ("prev_status", "prev_codes", "health", "expected"),
    [
        ("healthy", [], h("healthy", []), (False, "status_healthy")),
        ("critical", ["ingest_stale"], h("healthy", []), (False, "status_healthy")),
        ("healthy", [], h("critical", ["ingest_stale"]), (True, "status_changed")),
        ("degraded", ["ingest_stale"], h("critical", ["ingest_stale"]), (True, "status_changed")),
        (
            "degraded",
            ["transport_unreachable"],
            h("degraded", ["ingest_stale", "transport_unreachable"]),
            (True, "reason_codes_changed"),
        ),
        # 7.4 #50: the second identical failure adds nothing
        (
            "degraded",
            ["transport_unreachable"],
            h("degraded", ["transport_unreachable"]),
            (False, "unchanged"),
        ),
        # a severity change inside one code set and status does not re-fire
        (
            "critical",
            ["ingest_stale", "x"],
            h("critical", ["ingest_stale", "x"]),
            (False, "unchanged"),
        ),
    ],
)
def test_health_decision_table(
    prev_status: str, prev_codes: list[str], health: dict[str, Any], expected: tuple[bool, str]
) -> None:
    assert health_escalation_decision(prev_status, prev_codes, health) == expected


FLAGS_CURSOR = {
    "activeMismatch": False,
    "approvalCompletionConflict": False,
    "cursorRegression": True,
}
FLAGS_ACTIVE = {
    "activeMismatch": True,
    "approvalCompletionConflict": False,
    "cursorRegression": False,
}
FLAGS_BOTH = {"activeMismatch": True, "approvalCompletionConflict": False, "cursorRegression": True}


def s(any_: bool, flags: dict[str, bool]) -> dict[str, Any]:
    return {"divergence": {"any": any_, "flags": flags}}


@pytest.mark.parametrize(
    ("prev_flags", "prev_any", "state", "expected"),
    [
        (None, False, s(False, {}), (False, "no_divergence")),
        (FLAGS_CURSOR, True, s(False, {}), (False, "no_divergence")),
        (None, False, s(True, FLAGS_CURSOR), (True, "divergence_started")),
        ({}, False, s(True, FLAGS_CURSOR), (True, "divergence_started")),
        (FLAGS_CURSOR, True, s(True, FLAGS_ACTIVE), (True, "flags_changed")),
        (FLAGS_CURSOR, True, s(True, FLAGS_BOTH), (True, "flags_changed")),
        (FLAGS_BOTH, True, s(True, FLAGS_CURSOR), (False, "flags_cleared")),
        (None, True, s(True, FLAGS_CURSOR), (True, "flags_changed")),
        (FLAGS_CURSOR, True, s(True, dict(reversed(FLAGS_CURSOR.items()))), (False, "unchanged")),
        (FLAGS_CURSOR, True, s(True, FLAGS_CURSOR), (False, "unchanged")),
        (None, False, {}, (False, "no_divergence")),
    ],
)
def test_divergence_decision_table(
    prev_flags: dict[str, Any] | None,
    prev_any: bool,
    state: dict[str, Any],
    expected: tuple[bool, str],
) -> None:
    assert divergence_escalation_decision(prev_flags, prev_any, state) == expected
