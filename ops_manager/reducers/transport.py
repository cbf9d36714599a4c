"""``TEL/transport-health.json``: the per-loop transport failure streak (``loop.md`` §3.8.4)."""

from __future__ import annotations

from typing import Any

from ops_manager.model._json import as_nonneg_int, nonempty_str, strip_nulls
from ops_manager.model._time import format_ts


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
