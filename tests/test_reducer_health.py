"""The health projection (loop.md §3.4, §5.1, §7.4, Appendix A) as decision tables + properties."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import parse_ts
from ops_manager.reducers.health import (
    HEALTH_REASON_FOR_FAILURE,
    HealthInputs,
    compute_health,
    reason_for_failure,
)
from ops_manager.reducers.thresholds import Thresholds


def epoch(text: str) -> int:
    """Parse a contract timestamp that the test knows to be valid."""
    value = parse_ts(text)
    assert value is not None, text
    return value


NOW_A = epoch("2026-11-22T02:17:18Z")
BALANCED = Thresholds(profile="balanced")


def inputs(**overrides: Any) -> HealthInputs:
    base: dict[str, Any] = {
        "now": NOW_A,
        "trace_id": None,
        "transport": "local",
        "ingest_status": "success",
        "failure_code": None,
        "thresholds": BALANCED,
        "state": {},
        "heartbeat_state": {},
        "sequence_state": {},
        "transport_health": {},
        "last_control_status": None,
    }
    base.update(overrides)
    return HealthInputs(**base)


def fresh_state(lag: int = 5, **extra: Any) -> dict[str, Any]:
    """A state whose last event is ``lag`` seconds before NOW_A."""
    from ops_manager._timefmt import format_ts

    state: dict[str, Any] = {
        "transition": {"currentState": "running"},
        "projection": {"status": "running", "lastEventAt": format_ts(NOW_A - lag)},
        "divergence": {"any": False},
    }
    state.update(extra)
    return state


# --- Appendix A / scenario captures ----------------------------------------------------------

APPENDIX_A_HEALTH = (
    '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:17:18Z","traceId":"trace-1","status":"critical",'
    '"reasonCodes":["ingest_stale"],"reasons":[{"code":"ingest_stale","severity":"critical",'
    '"metric":"ingestLagSeconds","observed":"23559433","threshold":"900"}],"metrics":'
    '{"ingestLagSeconds":23559433,"heartbeatLagSeconds":null,"transportFailureStreak":0,'
    '"lastControlStatus":null,"sequenceStatus":"ok","lifecycleState":"running"},"thresholds":'
    '{"profile":"balanced","degradedIngestLagSeconds":300,"criticalIngestLagSeconds":900,'
    '"degradedHeartbeatLagSeconds":120,"criticalHeartbeatLagSeconds":300,'
    '"degradedTransportFailureStreak":2,"criticalTransportFailureStreak":4},"transport":'
    '{"mode":"local","ingestStatus":"success","failureCode":null,"lastFailureCode":null},'
    '"evidence":{"lastEventAt":"2026-02-22T10:00:05Z","lastHeartbeatAt":null,'
    '"sequenceUpdatedAt":"2026-11-22T02:17:18Z"}}'
)

SCENARIO_C_HEALTH = (
    '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:17:32Z","traceId":"tf-2","status":"degraded",'
    '"reasonCodes":["transport_unreachable"],"reasons":[{"code":"transport_unreachable",'
    '"severity":"degraded","metric":"transportFailureStreak","observed":"2","threshold":"2"}],'
    '"metrics":{"ingestLagSeconds":null,"heartbeatLagSeconds":null,"transportFailureStreak":2,'
    '"lastControlStatus":null,"sequenceStatus":null,"lifecycleState":"unknown"},"thresholds":'
    '{"profile":"balanced","degradedIngestLagSeconds":300,"criticalIngestLagSeconds":900,'
    '"degradedHeartbeatLagSeconds":120,"criticalHeartbeatLagSeconds":300,'
    '"degradedTransportFailureStreak":2,"criticalTransportFailureStreak":4},"transport":'
    '{"mode":"local","ingestStatus":"failed","failureCode":"snapshot_unavailable",'
    '"lastFailureCode":"snapshot_unavailable"},"evidence":{"lastEventAt":null,'
    '"lastHeartbeatAt":null,"sequenceUpdatedAt":null}}'
)


def test_appendix_a_health_is_byte_identical() -> None:
    inp = inputs(
        trace_id="trace-1",
        state={
            "transition": {"currentState": "running"},
            "projection": {"status": "running", "lastEventAt": "2026-02-22T10:00:05Z"},
            "divergence": {"any": False, "flags": {}},
        },
        sequence_state={"status": "ok", "driftActive": False, "updatedAt": "2026-11-22T02:17:18Z"},
        transport_health={"failureStreak": 0, "lastResult": "success"},
    )
    assert dumps_compact(compute_health(inp)) == APPENDIX_A_HEALTH


def test_scenario_c_second_failure_keeps_streak_reason_only() -> None:
    # the streak-based transport_unreachable (added first) hides the ingest-based one
    now = epoch("2026-11-22T02:17:32Z")
    inp = inputs(
        now=now,
        trace_id="tf-2",
        ingest_status="failed",
        failure_code="snapshot_unavailable",
        transport_health={
            "failureStreak": 2,
            "lastFailureCode": "snapshot_unavailable",
            "lastResult": "failed",
        },
    )
    assert dumps_compact(compute_health(inp)) == SCENARIO_C_HEALTH


def test_scenario_c_first_failure_uses_ingest_reason() -> None:
    inp = inputs(
        ingest_status="failed",
        failure_code="snapshot_unavailable",
        transport_health={"failureStreak": 1, "lastFailureCode": "snapshot_unavailable"},
    )
    health = compute_health(inp)
    assert health["status"] == "degraded"
    assert health["reasons"] == [
        {
            "code": "transport_unreachable",
            "severity": "degraded",
            "metric": "ingestStatus",
            "observed": "failed",
            "threshold": "success",
        }
    ]


def test_scenario_d_truncation_reasons() -> None:
    now = epoch("2026-11-22T02:19:18Z")
    inp = inputs(
        now=now,
        trace_id="td",
        thresholds=Thresholds(
            profile="balanced",
            degraded_heartbeat_lag_seconds=1,
            critical_heartbeat_lag_seconds=999999999,
        ),
        state={
            "transition": {"currentState": "running"},
            "projection": {"lastEventAt": "2026-11-22T02:19:10Z"},
            "divergence": {"any": True},
        },
        heartbeat_state={"lastHeartbeatAt": "2020-01-01T00:00:00Z", "heartbeatLagSeconds": 1},
        sequence_state={
            "status": "ordering_drift_detected",
            "reasonCode": "ordering_drift_detected",
            "driftActive": True,
        },
    )
    health = compute_health(inp)
    assert dumps_compact(health["reasons"]) == (
        '[{"code":"divergence_detected","severity":"degraded","metric":"divergence.any",'
        '"observed":"true","threshold":"false"},{"code":"ordering_drift_detected",'
        '"severity":"degraded","metric":"sequence.status","observed":"ordering_drift_detected",'
        '"threshold":"ok"},{"code":"runtime_heartbeat_stale","severity":"degraded",'
        '"metric":"heartbeatLagSeconds","observed":"217477158","threshold":"1"}]'
    )
    assert health["reasonCodes"] == [
        "divergence_detected",
        "ordering_drift_detected",
        "runtime_heartbeat_stale",
    ]
    assert health["metrics"]["heartbeatLagSeconds"] == 217477158


def test_key_order() -> None:
    health = compute_health(inputs())
    assert list(health) == [
        "schemaVersion",
        "updatedAt",
        "traceId",
        "status",
        "reasonCodes",
        "reasons",
        "metrics",
        "thresholds",
        "transport",
        "evidence",
    ]
    assert list(health["metrics"]) == [
        "ingestLagSeconds",
        "heartbeatLagSeconds",
        "transportFailureStreak",
        "lastControlStatus",
        "sequenceStatus",
        "lifecycleState",
    ]
    assert list(health["thresholds"]) == [
        "profile",
        "degradedIngestLagSeconds",
        "criticalIngestLagSeconds",
        "degradedHeartbeatLagSeconds",
        "criticalHeartbeatLagSeconds",
        "degradedTransportFailureStreak",
        "criticalTransportFailureStreak",
    ]
    assert list(health["transport"]) == ["mode", "ingestStatus", "failureCode", "lastFailureCode"]
    assert list(health["evidence"]) == ["lastEventAt", "lastHeartbeatAt", "sequenceUpdatedAt"]


# --- one rule at a time ------------------------------------------------------------------------

R = tuple[str, str, str, str, str]  # code, severity, metric, observed, threshold

RULE_TABLE: list[tuple[str, dict[str, Any], str, list[R]]] = [
    ("nothing", {}, "healthy", []),
    ("fresh state", {"state": fresh_state()}, "healthy", []),
    (
        "divergence",
        {"state": fresh_state(divergence={"any": True})},
        "degraded",
        [("divergence_detected", "degraded", "divergence.any", "true", "false")],
    ),
    ("divergence any=1 is not true", {"state": fresh_state(divergence={"any": 1})}, "healthy", []),
    (
        "control ambiguous",
        {"last_control_status": "ambiguous"},
        "degraded",
        [("control_ambiguous", "degraded", "control.status", "ambiguous", "confirmed")],
    ),
    (
        "control failed_command",
        {"last_control_status": "failed_command"},
        "degraded",
        [("control_failed_command", "degraded", "control.status", "failed_command", "confirmed")],
    ),
    ("control confirmed", {"last_control_status": "confirmed"}, "healthy", []),
    ("ingest lag below degraded", {"state": fresh_state(299)}, "healthy", []),
    (
        "ingest lag == degraded (>=)",
        {"state": fresh_state(300)},
        "degraded",
        [("ingest_stale", "degraded", "ingestLagSeconds", "300", "300")],
    ),
    (
        "ingest lag == critical",
        {"state": fresh_state(900)},
        "critical",
        [("ingest_stale", "critical", "ingestLagSeconds", "900", "900")],
    ),
    ("future event clamps to 0", {"state": fresh_state(-50)}, "healthy", []),
    (
        "unparseable lastEventAt is no metric",
        {"state": {"projection": {"lastEventAt": "2026-02-22T10:00:05+00:00"}}},
        "healthy",
        [],
    ),
    (
        "heartbeat degraded",
        {"heartbeat_state": {"lastHeartbeatAt": "2026-11-22T02:15:18Z"}},
        "degraded",
        [("runtime_heartbeat_stale", "degraded", "heartbeatLagSeconds", "120", "120")],
    ),
    (
        "heartbeat critical",
        {"heartbeat_state": {"lastHeartbeatAt": "2026-11-22T02:12:18Z"}},
        "critical",
        [("runtime_heartbeat_stale", "critical", "heartbeatLagSeconds", "300", "300")],
    ),
    (
        "heartbeat time from nested heartbeat.timestamp",
        {"heartbeat_state": {"heartbeat": {"timestamp": "2026-11-22T02:15:18Z"}}},
        "degraded",
        [("runtime_heartbeat_stale", "degraded", "heartbeatLagSeconds", "120", "120")],
    ),
    (
        "streak == degraded",
        {"transport_health": {"failureStreak": 2}},
        "degraded",
        [("transport_unreachable", "degraded", "transportFailureStreak", "2", "2")],
    ),
    (
        "streak == critical",
        {"transport_health": {"failureStreak": 4}},
        "critical",
        [("transport_unreachable", "critical", "transportFailureStreak", "4", "4")],
    ),
    ("non-integer streak counts 0", {"transport_health": {"failureStreak": "9"}}, "healthy", []),
    (
        "sequence drift, defaults",
        {"sequence_state": {"driftActive": True}},
        "degraded",
        [
            (
                "ordering_drift_detected",
                "degraded",
                "sequence.status",
                "ordering_drift_detected",
                "ok",
            )
        ],
    ),
    (
        "sequence drift, own code and status",
        {"sequence_state": {"driftActive": True, "status": "weird", "reasonCode": "odd_code"}},
        "degraded",
        [("odd_code", "degraded", "sequence.status", "weird", "ok")],
    ),
    (
        "sequence not drifting",
        {"sequence_state": {"status": "ok", "driftActive": False}},
        "healthy",
        [],
    ),
    (
        "ingest failed, no code (7.4 #54)",
        {"ingest_status": "failed"},
        "degraded",
        [("reconcile_failed", "degraded", "ingestStatus", "failed", "success")],
    ),
    (
        "ingest failed, passthrough code",
        {"ingest_status": "failed", "failure_code": "weird_code"},
        "degraded",
        [("weird_code", "degraded", "ingestStatus", "failed", "success")],
    ),
    (
        "7.4 #43: streak 2 with thresholds 1/2",
        {
            "state": fresh_state(),
            "transport_health": {"failureStreak": 2},
            "thresholds": Thresholds(
                degraded_transport_failure_streak=1, critical_transport_failure_streak=2
            ),
        },
        "critical",
        [("transport_unreachable", "critical", "transportFailureStreak", "2", "2")],
    ),
    (
        "Q-14: a zero threshold fires on streak 0",
        {"thresholds": Thresholds(degraded_transport_failure_streak=0)},
        "degraded",
        [("transport_unreachable", "degraded", "transportFailureStreak", "0", "0")],
    ),
    (
        "same code, two severities: both kept, critical sorts first",
        {
            "ingest_status": "failed",
            "failure_code": "events_unavailable",
            "transport_health": {"failureStreak": 4},
        },
        "critical",
        [
            ("transport_unreachable", "critical", "transportFailureStreak", "4", "4"),
            ("transport_unreachable", "degraded", "ingestStatus", "failed", "success"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("overrides", "status", "reasons"),
    [pytest.param(o, s, r, id=name) for name, o, s, r in RULE_TABLE],
)
def test_rule_table(overrides: dict[str, Any], status: str, reasons: list[R]) -> None:
    health = compute_health(inputs(**overrides))
    assert health["status"] == status
    keys = ("code", "severity", "metric", "observed", "threshold")
    assert health["reasons"] == [dict(zip(keys, r, strict=True)) for r in reasons]
    assert health["reasonCodes"] == sorted({r[0] for r in reasons})


@pytest.mark.parametrize(
    ("failure_code", "reason"),
    [
        ("snapshot_unavailable", "transport_unreachable"),
        ("events_unavailable", "transport_unreachable"),
        ("service_request_failed", "transport_unreachable"),
        ("service_response_invalid", "invalid_transport_payload"),
        ("projection_failed", "projection_failed"),
        (None, "reconcile_failed"),
        ("", "reconcile_failed"),
        ("weird_code", "weird_code"),
    ],
)
def test_failure_code_table(failure_code: str | None, reason: str) -> None:
    assert reason_for_failure(failure_code) == reason
    health = compute_health(inputs(ingest_status="failed", failure_code=failure_code))
    assert health["reasonCodes"] == [reason]
    assert health["transport"]["failureCode"] == (failure_code or None)


def test_failure_table_covers_every_reconcile_failure_code() -> None:
    assert set(HEALTH_REASON_FOR_FAILURE) == {
        "snapshot_unavailable",
        "events_unavailable",
        "service_request_failed",
        "service_response_invalid",
        "projection_failed",
    }


def test_reasons_sorted_by_code_severity_and_codes_unique() -> None:
    # 7.4 #52
    health = compute_health(
        inputs(
            state=fresh_state(1000, divergence={"any": True}),
            last_control_status="failed_command",
            sequence_state={"driftActive": True},
            transport_health={"failureStreak": 3},
            ingest_status="failed",
            failure_code="weird_code",
        )
    )
    assert health["reasonCodes"] == [
        "control_failed_command",
        "divergence_detected",
        "ingest_stale",
        "ordering_drift_detected",
        "transport_unreachable",
        "weird_code",
    ]
    keys = [f"{r['code']}:{r['severity']}" for r in health["reasons"]]
    assert keys == sorted(keys)
    assert health["status"] == "critical"


# --- heartbeat lag: Q-11 / Q-33 ---------------------------------------------------------------


def test_heartbeat_lag_recomputed_not_stored() -> None:
    # the stored lag is from an older pass; the time of the heartbeat is what counts
    hb = {"lastHeartbeatAt": "2026-11-22T02:07:18Z", "heartbeatLagSeconds": 3}
    health = compute_health(inputs(heartbeat_state=hb))
    assert health["metrics"]["heartbeatLagSeconds"] == 600
    assert health["status"] == "critical"
    assert health["evidence"]["lastHeartbeatAt"] == "2026-11-22T02:07:18Z"


@pytest.mark.parametrize(
    ("hb", "lag"),
    [
        ({"heartbeatLagSeconds": 130}, 130),
        ({"lastHeartbeatAt": "garbage", "heartbeatLagSeconds": 130}, 130),
        ({"lastHeartbeatAt": "garbage", "heartbeatLagSeconds": -1}, None),
        ({"heartbeatLagSeconds": "130"}, None),
        ({}, None),
    ],
)
def test_heartbeat_lag_fallback(hb: dict[str, Any], lag: int | None) -> None:
    assert compute_health(inputs(heartbeat_state=hb))["metrics"]["heartbeatLagSeconds"] == lag


@pytest.mark.parametrize(
    ("state", "lifecycle"),
    [
        ({}, "unknown"),
        ({"projection": {"status": "idle"}}, "idle"),
        ({"transition": {"currentState": "stopped"}, "projection": {"status": "idle"}}, "stopped"),
        ({"transition": {"currentState": ""}, "projection": {"status": "idle"}}, "idle"),
    ],
)
def test_lifecycle_state_fallbacks(state: dict[str, Any], lifecycle: str) -> None:
    assert compute_health(inputs(state=state))["metrics"]["lifecycleState"] == lifecycle


def test_misc_metrics_and_labels() -> None:
    health = compute_health(
        inputs(
            trace_id="t-1",
            transport="sprite_service",
            thresholds=Thresholds(profile="strict"),
            transport_health={"failureStreak": 0, "lastFailureCode": "service_request_failed"},
            sequence_state={"status": "ok", "updatedAt": "2026-11-22T02:00:00Z"},
            last_control_status="confirmed",
        )
    )
    assert health["traceId"] == "t-1"
    assert health["transport"] == {
        "mode": "sprite_service",
        "ingestStatus": "success",
        "failureCode": None,
        "lastFailureCode": "service_request_failed",
    }
    assert health["thresholds"]["profile"] == "strict"
    assert health["metrics"]["lastControlStatus"] == "confirmed"
    assert health["metrics"]["sequenceStatus"] == "ok"
    assert health["evidence"]["sequenceUpdatedAt"] == "2026-11-22T02:00:00Z"
    assert health["updatedAt"] == "2026-11-22T02:17:18Z"


# --- properties --------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars
    | st.sampled_from(["2026-11-22T02:00:00Z", "2020-01-01T00:00:00Z", "running", "ambiguous"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "divergence",
        "any",
        "projection",
        "lastEventAt",
        "transition",
        "currentState",
        "status",
        "lastHeartbeatAt",
        "heartbeat",
        "timestamp",
        "heartbeatLagSeconds",
        "failureStreak",
        "lastFailureCode",
        "reasonCode",
        "updatedAt",
        "driftActive",
    ]
)
json_dicts = st.recursive(
    st.dictionaries(KEYS, json_values, max_size=4),
    lambda children: st.dictionaries(KEYS, children | json_values, max_size=4),
    max_leaves=10,
)
thresholds = st.builds(
    Thresholds,
    profile=st.none() | st.text(max_size=5),
    degraded_ingest_lag_seconds=st.integers(0, 1000),
    critical_ingest_lag_seconds=st.integers(0, 1000),
    degraded_heartbeat_lag_seconds=st.integers(0, 1000),
    critical_heartbeat_lag_seconds=st.integers(0, 1000),
    degraded_transport_failure_streak=st.integers(0, 6),
    critical_transport_failure_streak=st.integers(0, 6),
)
health_inputs = st.builds(
    HealthInputs,
    now=st.integers(0, 2**33),
    trace_id=st.none() | st.text(max_size=5),
    transport=st.sampled_from(["local", "sprite_service"]),
    ingest_status=st.sampled_from(["success", "failed"]),
    failure_code=st.none() | st.sampled_from(["", "snapshot_unavailable", "x"]),
    thresholds=thresholds,
    state=json_dicts,
    heartbeat_state=json_dicts,
    sequence_state=json_dicts,
    transport_health=json_dicts,
    last_control_status=st.none() | st.sampled_from(["ambiguous", "failed_command", "confirmed"]),
)


@settings(max_examples=150, deadline=None)
@given(health_inputs)
def test_property_total_and_deterministic(inp: HealthInputs) -> None:
    first = compute_health(inp)
    assert dumps_compact(first) == dumps_compact(compute_health(inp))
    severities = {r["severity"] for r in first["reasons"]}
    assert (first["status"] == "critical") == ("critical" in severities)
    assert (first["status"] == "healthy") == (not first["reasons"])
    keys = [f"{r['code']}:{r['severity']}" for r in first["reasons"]]
    assert keys == sorted(set(keys))
    assert first["reasonCodes"] == sorted({r["code"] for r in first["reasons"]})
    for reason in first["reasons"]:
        assert all(isinstance(v, str) and v for v in reason.values())


@settings(max_examples=100, deadline=None)
@given(health_inputs, st.integers(0, 50))
def test_property_streak_at_or_over_critical_is_critical(inp: HealthInputs, streak: int) -> None:
    limit = inp.thresholds.critical_transport_failure_streak
    inp = attrs.evolve(inp, transport_health={"failureStreak": limit + streak})
    health = compute_health(inp)
    assert health["status"] == "critical"
    assert {
        "code": "transport_unreachable",
        "severity": "critical",
        "metric": "transportFailureStreak",
        "observed": str(limit + streak),
        "threshold": str(limit),
    } in health["reasons"]
