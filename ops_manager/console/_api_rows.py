"""Row shapers: artifact records to the JSON rows and SLO series the console shows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops_manager._timefmt import parse_ts
from ops_manager.console._api_common import (
    JSON,
    PENDING,
    RECENT_ROWS,
    as_number,
    as_object,
    as_str,
    as_strs,
)
from ops_manager.errors import OpsError


def delivery_outcome(sink: Mapping[str, Any]) -> str:
    """``delivered`` | ``retrying`` | ``failed`` for one ``sinks[]`` entry of an alert row.

    A failed attempt the outbox still holds (``queued``/``retrying``) will be retried by the
    next run: that is *retrying*; a failure the outbox gave up on (or never kept) is
    *failed*.
    """
    if sink.get("status") == "success":
        return "delivered"
    if sink.get("outboxStatus") in ("queued", "retrying"):
        return "retrying"
    if sink.get("outboxStatus") == "delivered":
        return "delivered"
    return "failed"


_OUTBOX_OUTCOME = {
    "delivered": "delivered",
    "queued": "retrying",
    "retrying": "retrying",
    "terminal": "failed",
    "gave_up": "failed",
}


# --- row shapers -----------------------------------------------------------------------------


def is_pending(intent: Any) -> bool:
    return isinstance(intent, dict) and intent.get("status") == PENDING


def manual_only(intent: JSON) -> bool:
    auto = intent.get("autonomous")
    return bool(isinstance(auto, dict) and auto.get("manualOnly") is True)


def intent_row(intent: JSON) -> JSON:
    auto = as_object(intent.get("autonomous"))
    return {
        "intentId": intent.get("intentId"),
        "loopId": intent.get("loopId"),
        "intent": intent.get("intent"),
        "category": intent.get("category"),
        "severity": intent.get("severity"),
        "confidence": intent.get("confidence"),
        "rationale": intent.get("rationale"),
        "status": intent.get("status"),
        "transport": intent.get("transport"),
        "manualOnly": manual_only(intent),
        "autonomousEligible": bool(auto.get("eligible") is True),
        "autonomousReasons": as_strs(auto.get("reasons")),
        "execution": intent.get("execution"),
    }


def execution_summary(execution: Any) -> JSON | None:
    if not isinstance(execution, dict):
        return None
    keys = (
        "mode",
        "requestedBy",
        "requestedAt",
        "completedAt",
        "note",
        "requestedIntentCount",
        "executedCount",
        "ambiguousCount",
        "failedCount",
        "results",
    )
    return {k: execution.get(k) for k in keys}


def autonomous_summary(status: JSON | None) -> JSON | None:
    auto = (status or {}).get("autonomous")
    if not isinstance(auto, dict):
        return None
    return {
        "mode": auto.get("mode"),
        "enabled": auto.get("enabled"),
        "outcomeRollup": auto.get("outcomeRollup"),
        "killSwitchActive": (auto.get("safetyGateDecisions") or {}).get("killSwitchActive"),
    }


def event_row(e: JSON) -> JSON:
    return {
        "timestamp": e.get("timestamp"),
        "event": e.get("event"),
        "runId": e.get("run_id"),
        "iteration": e.get("iteration"),
        "role": e.get("role"),
        "status": e.get("status"),
        "message": e.get("message"),
    }


def escalation_row(e: JSON) -> JSON:
    return {
        "timestamp": e.get("timestamp"),
        "category": e.get("category"),
        "healthStatus": e.get("healthStatus"),
        "reasonCodes": as_strs(e.get("reasonCodes")),
        "traceId": e.get("traceId"),
        "transport": e.get("transport"),
    }


def delivery_row(r: JSON) -> JSON:
    sinks = []
    for s in r.get("sinks") or []:
        if not isinstance(s, dict):
            continue
        sinks.append(
            {
                "id": s.get("id"),
                "type": s.get("type"),
                "outcome": delivery_outcome(s),
                "status": s.get("status"),
                "reasonCode": s.get("reasonCode"),
                "httpStatus": s.get("httpStatus"),
                "outboxStatus": s.get("outboxStatus"),
                "attempts": s.get("attempts"),
                "message": s.get("message"),
            }
        )
    return {
        "timestamp": r.get("timestamp"),
        "status": r.get("status"),
        "reasonCode": r.get("reasonCode"),
        "category": r.get("escalationCategory") or r.get("category"),
        "severity": r.get("eventSeverity"),
        "action": r.get("action"),
        "traceId": r.get("traceId"),
        "sinks": sinks,
    }


def outbox_rows(path: Path) -> list[JSON]:
    """The current state of every notification the outbox knows, newest first."""
    if not path.exists():
        return []
    from ops_manager.engine.alert_outbox import outbox_entries

    try:
        entries = outbox_entries(path)
    except OpsError:
        return []
    rows = []
    for entry in sorted(entries.values(), key=lambda e: e.order, reverse=True)[:RECENT_ROWS]:
        event = entry.event if isinstance(entry.event, Mapping) else {}
        rows.append(
            {
                "sinkId": entry.sink_id,
                "sinkType": entry.sink_type,
                "outcome": _OUTBOX_OUTCOME.get(entry.status, entry.status),
                "outboxStatus": entry.status,
                "attempts": entry.attempts,
                "firstQueuedAt": entry.first_queued_at,
                "nextAttemptAt": entry.next_attempt_at,
                "category": event.get("category"),
                "action": event.get("action"),
                "reasonCode": entry.last.get("reasonCode"),
                "httpStatus": entry.last.get("httpStatus"),
            }
        )
    return rows


def reconcile_row(r: JSON) -> JSON:
    return {
        "timestamp": r.get("timestamp"),
        "status": r.get("status"),
        "transport": r.get("transport"),
        "eventsIngested": r.get("eventsIngested"),
        "durationSeconds": r.get("durationSeconds"),
        "healthStatus": r.get("healthStatus"),
        "failureCode": r.get("failureCode"),
        "traceId": r.get("traceId"),
    }


def delivery_success(deliveries: list[tuple[str, str, JSON]]) -> JSON:
    """Per-sink delivery outcomes over time: a success-rate point per dispatch timestamp
    (fraction of that timestamp's sink attempts delivered) and totals by outcome/sink."""
    deliveries.sort(key=lambda d: parse_ts(d[0]) or 0)
    by_time: dict[str, list[str]] = {}
    totals = {"delivered": 0, "retrying": 0, "failed": 0}
    by_sink: dict[str, JSON] = {}
    for stamp, _loop, sink in deliveries:
        outcome = delivery_outcome(sink)
        by_time.setdefault(stamp, []).append(outcome)
        totals[outcome] += 1
        sid = str(sink.get("id") or "?")
        entry = by_sink.setdefault(
            sid, {"id": sid, "type": sink.get("type"), "delivered": 0, "retrying": 0, "failed": 0}
        )
        entry[outcome] += 1
    points = [[t, outs.count("delivered") / len(outs)] for t, outs in by_time.items()]
    attempts = sum(totals.values())
    return {
        "unit": "ratio",
        "series": [{"name": "delivered / attempted", "points": points}] if points else [],
        "totals": totals,
        "rate": (totals["delivered"] / attempts) if attempts else None,
        "bySink": list(by_sink.values()),
    }


def autonomous_outcomes(rows: list[JSON]) -> JSON:
    """Outcome rates of handoff executions over time (``fleet_handoff_execute`` rows)."""
    series: dict[str, list[list[Any]]] = {"executed": [], "ambiguous": [], "failed": []}
    totals = {"attempted": 0, "executed": 0, "ambiguous": 0, "failed": 0}
    manual = {"attempted": 0, "executed": 0, "ambiguous": 0, "failed": 0}
    for row in rows:
        execution = row.get("execution")
        if row.get("category") != "fleet_handoff_execute" or not isinstance(execution, dict):
            continue
        attempted = int(as_number(execution.get("requestedIntentCount")) or 0)
        counts = {
            k: int(as_number(execution.get(f"{k}Count")) or 0)
            for k in ("executed", "ambiguous", "failed")
        }
        bucket = totals if execution.get("mode") == "autonomous" else manual
        bucket["attempted"] += attempted
        for k, v in counts.items():
            bucket[k] += v
        if (
            execution.get("mode") != "autonomous"
            or attempted == 0
            or not as_str(row.get("timestamp"))
        ):
            continue
        for k, v in counts.items():
            series[k].append([row["timestamp"], v / attempted])
    return {
        "unit": "ratio",
        "series": [{"name": k, "points": v} for k, v in series.items() if v],
        "totals": totals,
        "manualTotals": manual,
    }
