"""``TEL/transport-health.json``: the per-loop transport failure streak (``loop.md`` §3.8.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ops_manager.model._json import as_nonneg_int, nonempty_str, strip_nulls
from ops_manager.model._time import format_ts, parse_ts


def next_transport_health(
    previous: dict[str, Any],
    *,
    success: bool,
    failure_code: str | None,
    now: int,
    trace_id: str | None,
    transport: str,
) -> dict[str, Any]:
    """The new transport-health object after one ingest attempt (**[strip]**).

    Success resets the streak, stamps ``lastSuccessAt`` and keeps the previous
    ``lastFailureAt`` (``lastFailureCode`` is not carried). Failure increments the previous
    streak (a non-integer counts as 0), stamps ``lastFailureAt`` and keeps the previous
    ``lastSuccessAt``. The streak is per loop, shared across transports.
    """
    prev = previous if isinstance(previous, dict) else {}
    stamp = format_ts(now)
    if success:
        streak = 0
        last_failure_code = None
        last_success_at: str | None = stamp
        last_failure_at = nonempty_str(prev.get("lastFailureAt"))
    else:
        streak = (as_nonneg_int(prev.get("failureStreak")) or 0) + 1
        last_failure_code = nonempty_str(failure_code)
        last_success_at = nonempty_str(prev.get("lastSuccessAt"))
        last_failure_at = stamp
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "updatedAt": stamp,
            "traceId": nonempty_str(trace_id),
            "transport": transport,
            "lastResult": "success" if success else "failed",
            "failureStreak": streak,
            "lastFailureCode": last_failure_code,
            "lastSuccessAt": last_success_at,
            "lastFailureAt": last_failure_at,
        }
    )


def fold_reconcile_row(previous: dict[str, Any] | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """One step of the transport-health fold over ``telemetry/reconcile.jsonl`` rows.

    A reconcile row records what its pass's :func:`next_transport_health` call used: the
    outcome (``status``, ``failureCode``), the pass's one clock value (``timestamp``),
    ``traceId`` and ``transport``; this replays that call on ``previous`` (``None`` before
    the first row). A row without a parseable ``timestamp`` or a string ``transport``
    raises ``ValueError`` (``rebuild`` reports the stream as unusable).
    """
    now = parse_ts(row.get("timestamp"))
    transport = row.get("transport")
    if now is None or not isinstance(transport, str):
        raise ValueError("a reconcile row without timestamp or transport")
    code, trace = row.get("failureCode"), row.get("traceId")
    return next_transport_health(
        previous or {},
        success=row.get("status") == "success",
        failure_code=code if isinstance(code, str) else None,
        now=now,
        trace_id=trace if isinstance(trace, str) else None,
        transport=transport,
    )
