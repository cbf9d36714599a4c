"""Runtime heartbeat observation (``loop.md`` §3.8.5), run on successful passes only.

Returns what to write as data: the new ``OPS/heartbeat.json`` (or ``None`` = leave the file
as it is) and the ``TEL/heartbeat.jsonl`` row (or ``None`` = append nothing).
"""

from __future__ import annotations

from typing import Any

import attrs

from ops_manager.model._json import alt, dumps_compact, strip_nulls
from ops_manager.model._time import format_ts, parse_ts

CATEGORY = "runtime_heartbeat"
STALE_REASON = "runtime_heartbeat_stale"
MISSING_REASON = "missing_heartbeat_timestamp"
INVALID_REASON = "invalid_heartbeat_timestamp"


@attrs.frozen
class HeartbeatObservation:
    """The outcome of one observation: ``state`` for heartbeat.json, ``telemetry_row`` to append."""

    state: dict[str, Any] | None = None
    telemetry_row: dict[str, Any] | None = None


def freshness(lag: int, degraded: int, critical: int) -> str:
    """``critical`` / ``degraded`` / ``fresh`` by the ``>=`` thresholds."""
    if lag >= critical:
        return "critical"
    if lag >= degraded:
        return "degraded"
    return "fresh"


def _heartbeat_at(heartbeat: object) -> object:
    """``.timestamp // .updatedAt`` (a non-object heartbeat has neither)."""
    if not isinstance(heartbeat, dict):
        return None
    return alt(heartbeat.get("timestamp"), heartbeat.get("updatedAt"))


def observe_heartbeat(
    heartbeat: object,
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    degraded: int,
    critical: int,
) -> HeartbeatObservation:
    """Observe the snapshot's ``runtime.heartbeat`` object.

    ``None`` -> nothing at all. No usable timestamp -> a ``missing_heartbeat_timestamp``
    row; an unparseable one -> ``invalid_heartbeat_timestamp`` (both ``status: failed``,
    heartbeat.json untouched). Otherwise the lag is graded and both the state and the row
    are produced.
    """
    if heartbeat is None:
        return HeartbeatObservation()
    stamp = format_ts(now)
    head: dict[str, Any] = {
        "timestamp": stamp,
        "loopId": loop_id,
        "traceId": trace_id or None,
        "transport": transport,
        "category": CATEGORY,
    }
    at = _heartbeat_at(heartbeat)
    if at is None or at == "":
        return HeartbeatObservation(
            telemetry_row={
                **head,
                "status": "failed",
                "reasonCode": MISSING_REASON,
                "heartbeat": heartbeat,
            }
        )
    # a non-string timestamp is shown the way the shell saw it (its compact JSON text)
    at_text = at if isinstance(at, str) else dumps_compact(at)
    parsed = parse_ts(at_text)
    if parsed is None:
        return HeartbeatObservation(
            telemetry_row={
                **head,
                "status": "failed",
                "reasonCode": INVALID_REASON,
                "heartbeatAt": at_text,
                "heartbeat": heartbeat,
            }
        )
    lag = max(0, now - parsed)
    status = freshness(lag, degraded, critical)
    reason = None if status == "fresh" else STALE_REASON
    state = strip_nulls(
        {
            "schemaVersion": "v1",
            "updatedAt": stamp,
            "loopId": loop_id,
            "traceId": trace_id or None,
            "transport": transport,
            "lastHeartbeatAt": at_text,
            "heartbeatLagSeconds": lag,
            "freshnessStatus": status,
            "reasonCode": reason,
            "thresholds": {
                "degradedHeartbeatLagSeconds": degraded,
                "criticalHeartbeatLagSeconds": critical,
            },
            "heartbeat": heartbeat,
        }
    )
    row = strip_nulls(
        {
            **head,
            "status": status,
            "reasonCode": reason,
            "heartbeatAt": at_text,
            "heartbeatLagSeconds": lag,
            "heartbeat": heartbeat,
        }
    )
    return HeartbeatObservation(state=state, telemetry_row=row)
