"""Sequence diagnostics (loop.md §3.8.6, §7.5, Appendix A/D; DECISIONS Q-12)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import parse_ts
from ops_manager.reducers.sequence import SeqBatch, evaluate_sequence, sequence_telemetry_row


def epoch(text: str) -> int:
    """Parse a contract timestamp that the test knows to be valid."""
    value = parse_ts(text)
    assert value is not None, text
    return value


NOW_A = epoch("2026-11-22T02:17:18Z")
NOW_D = epoch("2026-11-22T02:19:19Z")

APPENDIX_A_STATE = (
    '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:17:18Z","loopId":"demo-loop","traceId":"trace-1",'
    '"transport":"local","status":"ok","driftActive":false,"violations":[],"snapshot":{"previous":null,'
    '"current":2,"monotonic":true,"regressed":false,"missing":false},"events":{"ingestedCount":2,'
    '"previousLast":null,"first":1,"last":2,"monotonicWithinBatch":true,"monotonicAcrossBatches":true,'
    '"regressed":false,"missing":false},"transition":{"previousDriftActive":false,'
    '"transitionedToDrift":false,"recoveredFromDrift":false}}'
)
APPENDIX_A_ROW = (
    '{"timestamp":"2026-11-22T02:17:18Z","loopId":"demo-loop","traceId":"trace-1","transport":"local",'
    '"category":"envelope_sequence","status":"ok","driftActive":false,"violations":[],"snapshot":'
    '{"previous":null,"current":2,"monotonic":true,"regressed":false,"missing":false},"events":'
    '{"ingestedCount":2,"previousLast":null,"first":1,"last":2,"monotonicWithinBatch":true,'
    '"monotonicAcrossBatches":true,"regressed":false,"missing":false},"transition":'
    '{"previousDriftActive":false,"transitionedToDrift":false,"recoveredFromDrift":false}}'
)
APPENDIX_D_STATE = (
    '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:19:19Z","loopId":"demo-loop","traceId":"td",'
    '"transport":"local","status":"ordering_drift_detected","reasonCode":"ordering_drift_detected",'
    '"driftActive":true,"violations":["event_sequence_regression","snapshot_sequence_regression"],'
    '"snapshot":{"previous":2,"current":1,"monotonic":false,"regressed":true,"missing":false},'
    '"events":{"ingestedCount":1,"previousLast":2,"first":1,"last":1,"monotonicWithinBatch":true,'
    '"monotonicAcrossBatches":false,"regressed":true,"missing":false},"transition":'
    '{"previousDriftActive":false,"transitionedToDrift":true,"recoveredFromDrift":false}}'
)


def evaluate(
    previous: dict[str, Any],
    snapshot: object,
    values: list[object],
    *,
    now: int = NOW_A,
    trace: str | None = "trace-1",
    replay: bool = False,
) -> dict[str, Any]:
    return evaluate_sequence(
        previous,
        snapshot_value=snapshot,
        batch=SeqBatch.of(values),
        now=now,
        loop_id="demo-loop",
        trace_id=trace,
        transport="local",
        replay=replay,
    )


# --- the fold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], SeqBatch()),
        ([1, 2], SeqBatch(count=2, first=1, last=2)),
        ([1, 1], SeqBatch(count=2, first=1, last=1)),
        ([2, 1], SeqBatch(count=2, first=2, last=1, monotonic=False)),
        ([1, None, 3], SeqBatch(count=3, first=1, last=3, missing=True)),
        (["x", 4], SeqBatch(count=2, first=4, last=4, missing=True)),
        ([-1, 2.0], SeqBatch(count=2, first=2, last=2, missing=True)),
        ([True], SeqBatch(count=1, missing=True)),
        ([3, 5, 4, 6], SeqBatch(count=4, first=3, last=6, monotonic=False)),
    ],
)
def test_seqbatch_table(values: list[object], expected: SeqBatch) -> None:
    assert SeqBatch.of(values) == expected


values_st = st.lists(
    st.none() | st.integers(-3, 20) | st.sampled_from(["x", 2.0, 2.5, True]), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(values_st, st.integers(0, 12))
def test_property_fold_is_split_invariant(values: list[object], cut: int) -> None:
    a, b = values[:cut], values[cut:]
    folded = SeqBatch.of(a)
    for v in b:
        folded = folded.add(v)
    assert folded == SeqBatch.of(a + b)


# --- evaluation ---------------------------------------------------------------------------------


def test_appendix_a_first_pass() -> None:
    state = evaluate({}, 2, [1, 2])
    assert dumps_compact(state) == APPENDIX_A_STATE
    assert dumps_compact(sequence_telemetry_row(state, NOW_A)) == APPENDIX_A_ROW


def test_appendix_d_truncation_without_replay_flag() -> None:
    # upstream behaviour, kept when the pass is not an explicit replay (7.5 #58/#59/#64)
    previous = json.loads(APPENDIX_A_STATE)
    state = evaluate(previous, 1, [1], now=NOW_D, trace="td")
    assert dumps_compact(state) == APPENDIX_D_STATE


def test_appendix_d_truncation_with_replay_is_drift() -> None:
    # issue 12 point 2: a replay of a TRUNCATED log is not a replay of the same log (Q-12
    # exempts only the same log): both regressions are flagged, as upstream does (7.5 #64)
    previous = json.loads(APPENDIX_A_STATE)
    state = evaluate(previous, 1, [1], now=NOW_D, trace="td", replay=True)
    assert state["violations"] == ["event_sequence_regression", "snapshot_sequence_regression"]
    assert state["driftActive"] is True
    assert state["status"] == "ordering_drift_detected"
    assert state["snapshot"] == {
        "previous": 2,
        "current": 1,
        "monotonic": False,
        "regressed": True,
        "missing": False,
    }
    assert state["events"]["monotonicAcrossBatches"] is False
    assert state["events"]["previousLast"] == 2
    assert state["replay"] == {"fromStart": True, "sameLog": False, "logRewrite": "truncated"}


def test_same_length_rewrite_with_replay_is_drift() -> None:
    previous = json.loads(APPENDIX_A_STATE)
    state = evaluate_sequence(
        previous,
        snapshot_value=2,
        batch=SeqBatch.of([1, 2]),
        now=NOW_D,
        loop_id="demo-loop",
        trace_id="td",
        transport="local",
        replay=True,
        log_rewrite="rewritten",
    )
    assert state["violations"] == ["event_sequence_regression"]
    assert state["driftActive"] is True
    assert state["snapshot"]["regressed"] is False
    assert state["replay"] == {"fromStart": True, "sameLog": False, "logRewrite": "rewritten"}


def test_replay_still_reports_problems_inside_the_batch() -> None:
    state = evaluate(json.loads(APPENDIX_A_STATE), None, [2, 1, None], replay=True)
    assert state["violations"] == [
        "event_sequence_missing",
        "event_sequence_non_monotonic",
        "snapshot_sequence_missing",
    ]


def test_replay_of_unchanged_log_is_not_drift() -> None:
    # 7.5 #65 upstream flagged event_sequence_regression here; Q-12 says it is not drift
    previous = json.loads(APPENDIX_A_STATE)
    upstream = evaluate(previous, 2, [1, 2])
    assert upstream["violations"] == ["event_sequence_regression"]
    replay = evaluate(previous, 2, [1, 2], replay=True)
    assert replay["status"] == "ok"
    assert replay["violations"] == []
    assert "reasonCode" not in replay


def test_recovery_after_drift_with_zero_events() -> None:
    # 7.5 #65, second half
    drifted = json.loads(APPENDIX_D_STATE)
    state = evaluate(drifted, 1, [])
    assert state["status"] == "ok"
    assert state["events"]["first"] is None and state["events"]["last"] is None
    assert state["transition"] == {
        "previousDriftActive": True,
        "transitionedToDrift": False,
        "recoveredFromDrift": True,
    }


def test_baseline_survives_an_empty_pass() -> None:
    # Q-12b: upstream erased the baseline after a pass with no events
    empty_pass = evaluate(json.loads(APPENDIX_A_STATE), 2, [])
    assert empty_pass["events"]["last"] is None
    assert empty_pass["events"]["previousLast"] == 2
    later = evaluate(empty_pass, 3, [1])
    assert later["events"]["previousLast"] == 2
    assert later["violations"] == ["event_sequence_regression"]


@pytest.mark.parametrize(
    ("previous", "snapshot", "values", "violations"),
    [
        ({}, None, [], ["snapshot_sequence_missing"]),
        ({}, "7", [], ["snapshot_sequence_missing"]),
        ({}, -1, [], ["snapshot_sequence_missing"]),
        ({}, 3, [1, None], ["event_sequence_missing"]),
        ({}, 3, [2, 1], ["event_sequence_non_monotonic"]),
        ({"events": {"last": 5}}, 6, [5, 6], []),  # equal is fine
        ({"events": {"last": 5}}, 6, [4], ["event_sequence_regression"]),
        ({"snapshot": {"current": 5}}, 5, [], []),
        ({"snapshot": {"current": 5}}, 4, [], ["snapshot_sequence_regression"]),
        (
            {"snapshot": {"current": 9}, "events": {"last": 9}},
            None,
            [3, 2, "x"],
            [
                "event_sequence_missing",
                "event_sequence_non_monotonic",
                "event_sequence_regression",
                "snapshot_sequence_missing",
            ],
        ),
        ({"snapshot": {"current": "9"}, "events": {"last": "9"}}, 1, [1], []),
    ],
)
def test_violation_table(
    previous: dict[str, Any], snapshot: object, values: list[object], violations: list[str]
) -> None:
    state = evaluate(previous, snapshot, values)
    assert state["violations"] == violations
    assert state["driftActive"] is bool(violations)
    assert state["status"] == ("ordering_drift_detected" if violations else "ok")
    assert state.get("reasonCode") == ("ordering_drift_detected" if violations else None)


def test_key_order_and_strip() -> None:
    state = evaluate({"driftActive": True}, 4, [1, 2, 3], trace=None)
    assert list(state) == [
        "schemaVersion",
        "updatedAt",
        "loopId",
        "transport",
        "status",
        "driftActive",
        "violations",
        "snapshot",
        "events",
        "transition",
    ]
    assert list(state["snapshot"]) == ["previous", "current", "monotonic", "regressed", "missing"]
    assert list(state["events"]) == [
        "ingestedCount",
        "previousLast",
        "first",
        "last",
        "monotonicWithinBatch",
        "monotonicAcrossBatches",
        "regressed",
        "missing",
    ]
    assert state["transition"]["recoveredFromDrift"] is True
    row = sequence_telemetry_row(state, NOW_A)
    assert list(row) == [
        "timestamp",
        "loopId",
        "transport",
        "category",
        "status",
        "driftActive",
        "violations",
        "snapshot",
        "events",
        "transition",
    ]


def test_drifted_row_carries_reason_code() -> None:
    state = evaluate({}, None, [])
    row = sequence_telemetry_row(state, NOW_A)
    assert row["reasonCode"] == "ordering_drift_detected"
    assert list(row)[:7] == [
        "timestamp",
        "loopId",
        "traceId",
        "transport",
        "category",
        "status",
        "reasonCode",
    ]


json_scalars = st.none() | st.booleans() | st.integers(-5, 50) | st.text(max_size=4)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
prev_st = st.dictionaries(
    st.sampled_from(["snapshot", "events", "driftActive", "x"]),
    json_values
    | st.dictionaries(
        st.sampled_from(["current", "last", "previousLast"]), json_values, max_size=3
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(prev_st, json_values, values_st, st.booleans())
def test_property_total_and_deterministic(
    previous: dict[str, Any], snapshot: object, values: list[object], replay: bool
) -> None:
    a = evaluate(previous, snapshot, values, replay=replay)
    assert dumps_compact(a) == dumps_compact(evaluate(previous, snapshot, values, replay=replay))
    assert a["violations"] == sorted(set(a["violations"]))
    assert a["driftActive"] is bool(a["violations"])
    if replay and not a["snapshot"]["regressed"]:
        # a replay of the same log (no line lost) is never a cross-batch regression
        assert "event_sequence_regression" not in a["violations"]
        assert a["replay"]["sameLog"] is True
    if a["snapshot"]["regressed"]:
        assert "snapshot_sequence_regression" in a["violations"]
    t = a["transition"]
    assert not (t["transitionedToDrift"] and t["recoveredFromDrift"])
    sequence_telemetry_row(a, 0)
