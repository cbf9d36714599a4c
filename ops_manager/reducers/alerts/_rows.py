"""Records: the dispatch state and the T-* telemetry rows (§3.4, §3.5). PURE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.model._time import format_ts
from ops_manager.reducers.alerts._decide import (
    EscalationRow,
    Route,
    row_outcome,
)
from ops_manager.reducers.alerts._events import (
    excerpt,
)
from ops_manager.reducers.alerts._vocab import (
    ALERT_CONFIG_INVALID,
    ALERT_DISPATCH_FAILED,
    INVALID_ESCALATION_JSON,
    JSON,
    MISSING_ESCALATION_CATEGORY,
    ROUTE_RESOLUTION_FAILED,
    SINK_DISPATCH_FAILED,
    STATUS_CONFIG_INVALID,
)

# --- records: dispatch state and telemetry rows (§3.4, §3.5) -----------------------------


@attrs.frozen
class SinkResult:
    """One sink's outcome for one notification (a §3.5 ``sinks[]`` entry plus extras)."""

    sink_id: str
    sink_type: str
    success: bool
    reason_code: str | None = None
    http_status: int | None = None
    message: str | None = None
    attempts: int = 0
    retry_after_seconds: float | None = None
    #: what the outbox holds for it now: delivered | queued | retrying | terminal | gave_up
    outbox_status: str | None = None

    def to_json(self) -> JSON:
        """Contract key order (success: ``status, httpStatus, reasonCode, message``; failure:
        ``status, reasonCode, httpStatus, message``), then ``attempts``,
        ``retryAfterSeconds`` (when one was received) and ``outboxStatus``."""
        out: JSON = {"id": self.sink_id, "type": self.sink_type}
        if self.success:
            out.update(
                status="success",
                httpStatus=self.http_status,
                reasonCode=None,
                message=self.message,
            )
        else:
            out.update(
                status="failed",
                reasonCode=self.reason_code or SINK_DISPATCH_FAILED,
                httpStatus=self.http_status,
                message=self.message,
            )
        out["attempts"] = self.attempts
        if self.retry_after_seconds is not None:
            out["retryAfterSeconds"] = self.retry_after_seconds
        if self.outbox_status is not None:
            out["outboxStatus"] = self.outbox_status
        return out


def t_invalid(now: int, loop_id: str, trace_id: str, raw: str) -> JSON:
    """T-INVALID (not null-filtered)."""
    return {
        "timestamp": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id,
        "category": "alert_dispatch",
        "status": "failed",
        "reasonCode": INVALID_ESCALATION_JSON,
        "rawLine": raw,
    }


def t_nocat(now: int, loop_id: str, trace_id: str, escalation: Any) -> JSON:
    """T-NOCAT (not null-filtered)."""
    return {
        "timestamp": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id,
        "category": "alert_dispatch",
        "status": "failed",
        "reasonCode": MISSING_ESCALATION_CATEGORY,
        "escalation": escalation,
    }


def t_routefail(now: int, loop_id: str, trace_id: str, row: EscalationRow, message: str) -> JSON:
    """T-ROUTEFAIL (null-filtered; ``message`` cut to 300 characters, newlines → spaces)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": row.trace_id or trace_id,
            "category": "alert_dispatch",
            "escalationCategory": row.category,
            "escalationTimestamp": row.timestamp or None,
            "status": "failed",
            "reasonCode": ROUTE_RESOLUTION_FAILED,
            "message": excerpt(message),
            "escalation": row.escalation,
        }
    )


def t_skip(
    now: int,
    loop_id: str,
    trace_id: str,
    row: EscalationRow,
    route: Route,
    route_obj: JSON,
    extra: JSON,
) -> JSON:
    """T-SKIP (null-filtered), then our extras (``dedupKey``)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": row.trace_id or trace_id,
            "category": "alert_dispatch",
            "escalationCategory": row.category,
            "escalationTimestamp": row.timestamp or None,
            "eventSeverity": route.event_severity,
            "status": "skipped",
            "reasonCode": route.reason,
            "escalation": row.escalation,
            "route": route_obj,
            "sinkCount": 0,
            "dispatchedSinkCount": 0,
            "failedSinkCount": 0,
            **extra,
        }
    )


def t_delivery(
    now: int,
    *,
    loop_id: str,
    trace_id: str,
    escalation_trace_id: str,
    escalation_category: str,
    escalation_timestamp: str | None,
    event_severity: str,
    escalation: Any,
    route_obj: JSON | None,
    results: Sequence[SinkResult],
    extra: JSON,
) -> JSON:
    """T-DELIVERY (null-filtered), then our extras (``action``, ``dedupKey``,
    ``idempotencyKey``, ``source``). Also used for resolves and outbox retries (``route``
    is then absent)."""
    status, reason = row_outcome([r.success for r in results])
    ok = sum(1 for r in results if r.success)
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": escalation_trace_id,
            "category": "alert_dispatch",
            "escalationCategory": escalation_category,
            "escalationTimestamp": escalation_timestamp or None,
            "eventSeverity": event_severity,
            "status": status,
            "reasonCode": reason,
            "escalation": escalation,
            "route": route_obj,
            "sinks": [r.to_json() for r in results],
            "sinkCount": len(results),
            "dispatchedSinkCount": ok,
            "failedSinkCount": len(results) - ok,
            **extra,
        }
    )


def t_wrapper(now: int, loop_id: str, trace_id: str, message: str | None) -> JSON:
    """T-WRAPPER (null-filtered): dispatch failed inside reconcile."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "category": "alert_dispatch",
            "status": "failed_command",
            "reasonCode": ALERT_DISPATCH_FAILED,
            "message": message or None,
        }
    )


def config_error_json(
    *,
    now: int,
    message: str,
    config_file: str | None,
    pending: int,
    previous: object,
) -> JSON:
    """The ``configError`` of a run whose sink config cannot be loaded.

    ``since`` is carried over from the previous state's ``configError`` so it says when the
    config broke, not when the last run noticed; ``pendingEscalationCount`` is how many rows
    wait behind the unconsumed offset.
    """
    since = previous.get("since") if isinstance(previous, dict) else None
    return {
        "reasonCode": ALERT_CONFIG_INVALID,
        "message": message,
        "configFile": config_file,
        "since": since if isinstance(since, str) and since else format_ts(now),
        "pendingEscalationCount": pending,
    }


def t_config_invalid(now: int, loop_id: str, trace_id: str, error: JSON) -> JSON:
    """The alert telemetry row a run appends when the sink config becomes unusable (or its
    problem changes): the page is not lost, it waits; this row says why it waits."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "category": "alert_dispatch",
            "status": STATUS_CONFIG_INVALID,
            "reasonCode": ALERT_CONFIG_INVALID,
            "message": error.get("message"),
            "configFile": error.get("configFile"),
            "pendingEscalationCount": error.get("pendingEscalationCount"),
        }
    )
