"""Transport health (loop.md §3.8.4) and heartbeat observation (§3.8.5, §7.5, Appendix A/D)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import parse_ts
from ops_manager.reducers.heartbeat import HeartbeatObservation, freshness, observe_heartbeat
from ops_manager.reducers.transport import next_transport_health


def epoch(text: str) -> int:
    """Parse a contract timestamp that the test knows to be valid."""
    value = parse_ts(text)
    assert value is not None, text
    return value


NOW_A = epoch("2026-11-22T02:17:18Z")
NOW_D = epoch("2026-11-22T02:19:18Z")

# --- transport health ---------------------------------------------------------------------------


def test_appendix_a_first_success() -> None:
    out = next_transport_health(
        {}, success=True, failure_code=None, now=NOW_A, trace_id="trace-1", transport="local"
    )
    assert dumps_compact(out) == (
        '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:17:18Z","traceId":"trace-1",'
        '"transport":"local","lastResult":"success","failureStreak":0,'
        '"lastSuccessAt":"2026-11-22T02:17:18Z"}'
    )


def test_first_failure_shape() -> None:
    # 7.4 #49
    out = next_transport_health(
        {},
        success=False,
        failure_code="snapshot_unavailable",
        now=NOW_A,
        trace_id="tf-1",
        transport="local",
    )
    assert list(out) == [
        "schemaVersion",
        "updatedAt",
        "traceId",
        "transport",
        "lastResult",
        "failureStreak",
        "lastFailureCode",
        "lastFailureAt",
    ]
    assert out["lastResult"] == "failed"
    assert out["failureStreak"] == 1
    assert out["lastFailureCode"] == "snapshot_unavailable"
    assert out["lastFailureAt"] == "2026-11-22T02:17:18Z"


PREV = {
    "failureStreak": 3,
    "lastFailureCode": "events_unavailable",
    "lastSuccessAt": "2026-01-01T00:00:00Z",
    "lastFailureAt": "2026-01-02T00:00:00Z",
}


@pytest.mark.parametrize(
    ("previous", "success", "code", "expected"),
    [
        (
            PREV,
            True,
            None,
            {
                "failureStreak": 0,
                "lastSuccessAt": "2026-11-22T02:17:18Z",
                "lastFailureAt": "2026-01-02T00:00:00Z",
            },
        ),
        (
            PREV,
            False,
            "service_request_failed",
            {
                "failureStreak": 4,
                "lastFailureCode": "service_request_failed",
                "lastSuccessAt": "2026-01-01T00:00:00Z",
                "lastFailureAt": "2026-11-22T02:17:18Z",
            },
        ),
        (
            {"failureStreak": "7"},
            False,
            "projection_failed",
            {
                "failureStreak": 1,
                "lastFailureCode": "projection_failed",
                "lastFailureAt": "2026-11-22T02:17:18Z",
            },
        ),
        (
            {"failureStreak": 2.0},
            False,
            "x",
            {"failureStreak": 3, "lastFailureCode": "x", "lastFailureAt": "2026-11-22T02:17:18Z"},
        ),
        (
            {"failureStreak": -3},
            False,
            "x",
            {"failureStreak": 1, "lastFailureCode": "x", "lastFailureAt": "2026-11-22T02:17:18Z"},
        ),
    ],
)
def test_streak_and_carry_over(
    previous: dict[str, Any], success: bool, code: str | None, expected: dict[str, Any]
) -> None:
    out = next_transport_health(
        previous,
        success=success,
        failure_code=code,
        now=NOW_A,
        trace_id=None,
        transport="sprite_service",
    )
    assert "traceId" not in out  # [strip]
    tail = {
        k: v
        for k, v in out.items()
        if k not in ("schemaVersion", "updatedAt", "transport", "lastResult")
    }
    assert tail == expected
    assert out["transport"] == "sprite_service"


json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.sampled_from(["2026-11-22T02:00:00Z", "2020-01-01T00:00:00Z"]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=10,
)
TH_KEYS = st.sampled_from(
    ["failureStreak", "lastFailureAt", "lastSuccessAt", "lastFailureCode", "x"]
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(TH_KEYS, json_values, max_size=5),
    st.booleans(),
    st.none() | st.text(max_size=5),
    st.integers(0, 2**33),
)
def test_property_transport_total_deterministic(
    previous: dict[str, Any], success: bool, code: str | None, now: int
) -> None:
    kwargs: dict[str, Any] = {
        "success": success,
        "failure_code": code,
        "now": now,
        "trace_id": "t",
        "transport": "local",
    }
    out = next_transport_health(previous, **kwargs)
    assert dumps_compact(out) == dumps_compact(next_transport_health(previous, **kwargs))
    if success:
        assert out["failureStreak"] == 0 and "lastFailureCode" not in out
    else:
        prev = previous.get("failureStreak")
        base = prev if isinstance(prev, int) and not isinstance(prev, bool) and prev >= 0 else 0
        assert out["failureStreak"] == base + 1
    assert None not in out.values()


# --- heartbeat ----------------------------------------------------------------------------------

HB_D = {
    "schemaVersion": "v1",
    "timestamp": "2020-01-01T00:00:00Z",
    "source": "runtime",
    "status": "running",
    "stage": "iteration",
}


def observe(
    hb: object, now: int = NOW_D, trace: str | None = "td", deg: int = 1, crit: int = 999999999
) -> HeartbeatObservation:
    return observe_heartbeat(
        hb,
        now=now,
        loop_id="demo-loop",
        trace_id=trace,
        transport="local",
        degraded=deg,
        critical=crit,
    )


def test_appendix_d_heartbeat_state() -> None:
    obs = observe(HB_D)
    assert obs.state is not None and obs.telemetry_row is not None
    assert dumps_compact(obs.state) == (
        '{"schemaVersion":"v1","updatedAt":"2026-11-22T02:19:18Z","loopId":"demo-loop",'
        '"traceId":"td","transport":"local","lastHeartbeatAt":"2020-01-01T00:00:00Z",'
        '"heartbeatLagSeconds":217477158,"freshnessStatus":"degraded",'
        '"reasonCode":"runtime_heartbeat_stale","thresholds":{"degradedHeartbeatLagSeconds":1,'
        '"criticalHeartbeatLagSeconds":999999999},"heartbeat":{"schemaVersion":"v1",'
        '"timestamp":"2020-01-01T00:00:00Z","source":"runtime","status":"running",'
        '"stage":"iteration"}}'
    )
    assert list(obs.telemetry_row) == [
        "timestamp",
        "loopId",
        "traceId",
        "transport",
        "category",
        "status",
        "reasonCode",
        "heartbeatAt",
        "heartbeatLagSeconds",
        "heartbeat",
    ]
    assert obs.telemetry_row["status"] == "degraded"
    assert obs.telemetry_row["category"] == "runtime_heartbeat"


def test_none_heartbeat_leaves_everything_alone() -> None:
    assert observe(None) == HeartbeatObservation(state=None, telemetry_row=None)


@pytest.mark.parametrize(
    "hb",
    [
        {"status": "running"},
        {"timestamp": ""},
        {"timestamp": None, "updatedAt": False},
        [1],
        "x",
        5,
    ],
)
def test_missing_timestamp_row(hb: object) -> None:
    obs = observe(hb, trace=None)
    assert obs.state is None
    assert obs.telemetry_row == {
        "timestamp": "2026-11-22T02:19:18Z",
        "loopId": "demo-loop",
        "traceId": None,  # not stripped
        "transport": "local",
        "category": "runtime_heartbeat",
        "status": "failed",
        "reasonCode": "missing_heartbeat_timestamp",
        "heartbeat": hb,
    }


@pytest.mark.parametrize(
    ("hb", "shown"),
    [
        ({"timestamp": "yesterday"}, "yesterday"),
        ({"timestamp": "2026-11-22T02:19:18.5Z"}, "2026-11-22T02:19:18.5Z"),
        ({"updatedAt": "1969-12-31T23:59:59Z"}, "1969-12-31T23:59:59Z"),
        ({"timestamp": 1234}, "1234"),
    ],
)
def test_invalid_timestamp_row(hb: dict[str, Any], shown: str) -> None:
    obs = observe(hb)
    assert obs.state is None
    assert obs.telemetry_row is not None
    assert list(obs.telemetry_row) == [
        "timestamp",
        "loopId",
        "traceId",
        "transport",
        "category",
        "status",
        "reasonCode",
        "heartbeatAt",
        "heartbeat",
    ]
    assert obs.telemetry_row["reasonCode"] == "invalid_heartbeat_timestamp"
    assert obs.telemetry_row["heartbeatAt"] == shown


@pytest.mark.parametrize(
    ("lag", "status"),
    [
        (0, "fresh"),
        (119, "fresh"),
        (120, "degraded"),
        (299, "degraded"),
        (300, "critical"),
        (-30, "fresh"),
    ],
)
def test_freshness_table(lag: int, status: str) -> None:
    assert freshness(max(0, lag), 120, 300) == status
    at = NOW_D - lag
    from ops_manager._timefmt import format_ts

    obs = observe({"updatedAt": format_ts(at)}, deg=120, crit=300, trace=None)
    assert obs.state is not None and obs.telemetry_row is not None
    assert obs.state["freshnessStatus"] == status
    assert obs.state["heartbeatLagSeconds"] == max(0, lag)
    assert ("reasonCode" in obs.state) == (status != "fresh")
    assert "traceId" not in obs.state and "traceId" not in obs.telemetry_row  # [strip]
    assert obs.telemetry_row["status"] == status


@settings(max_examples=150, deadline=None)
@given(
    json_values
    | st.dictionaries(st.sampled_from(["timestamp", "updatedAt", "x"]), json_values, max_size=3),
    st.integers(0, 2**33),
    st.integers(0, 1000),
    st.integers(0, 1000),
)
def test_property_heartbeat_total_deterministic(hb: object, now: int, deg: int, crit: int) -> None:
    a = observe(hb, now=now, deg=deg, crit=crit)
    b = observe(hb, now=now, deg=deg, crit=crit)
    assert dumps_compact([a.state, a.telemetry_row]) == dumps_compact([b.state, b.telemetry_row])
    if hb is None:
        assert a == HeartbeatObservation()
    else:
        assert a.telemetry_row is not None
        if a.state is not None:
            assert a.state["freshnessStatus"] == a.telemetry_row["status"]
