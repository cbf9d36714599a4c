"""``alert-dispatch-state.json`` (alerts.md §3.4): a dispatch run's counters and its state
document, in the contract's key order.

Outside the ``reducers.alerts`` package on purpose: the quiet dispatch
(``engine._alert_quiet``) writes this document without importing the alert stack, and the
full run writes it through the same function, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ops_manager.model._time import format_ts

JSON = dict[str, Any]


@attrs.frozen
class RunCounts:
    """The counters of one dispatch run (§3.3)."""

    processed: int = 0
    dispatched: int = 0
    skipped: int = 0
    failed: int = 0
    failure_codes: frozenset[str] = frozenset()
    resolves: int = 0
    retried: int = 0
    delivered_from_outbox: int = 0


def dispatch_state(
    *,
    now: int,
    loop_id: str,
    trace_id: str,
    escalations_file: str,
    telemetry_file: str,
    status: str,
    counts: RunCounts,
    offset: int,
    line_count: int,
    position: JSON | None,
    outbox: JSON,
    episodes: Mapping[str, JSON],
    config_error: JSON | None = None,
) -> JSON:
    """``alert-dispatch-state.json`` (§3.4): the contract keys in order, then ours:
    ``escalationsPosition`` (byte offset + fingerprint of the last consumed line, so the
    next run seeks instead of re-reading), ``resolveCount``, ``outbox`` and, last,
    ``episodes`` (as ``reducers.alerts.episodes_to_json`` gives them), then ``configError``
    (``null`` while the sink config is usable, else what ``config_error_json`` builds)."""
    return {
        "schemaVersion": "v1",
        "updatedAt": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id or None,
        "escalationsFile": escalations_file,
        "dispatchTelemetryFile": telemetry_file,
        "status": status,
        "processedCount": counts.processed,
        "dispatchedCount": counts.dispatched,
        "skippedCount": counts.skipped,
        "failedCount": counts.failed,
        "failureReasonCodes": sorted(counts.failure_codes, key=lambda c: c.encode("utf-8")),
        "escalationsLineOffset": offset,
        "escalationsLineCount": line_count,
        "escalationsPosition": position,
        "resolveCount": counts.resolves,
        "outbox": {
            **outbox,
            "retriedCount": counts.retried,
            "deliveredFromOutboxCount": counts.delivered_from_outbox,
        },
        "episodes": dict(episodes),
        "configError": config_error,
    }
