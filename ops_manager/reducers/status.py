"""The operator status view (``loop.md`` §3.13.2), as a pure function of artifacts.

The shell reads the files (projections, and the last line of each stream); this module
decides what the operator sees. jq's ``a // b`` is :func:`~ops_manager._jsonfmt.alt`: it
skips ``false`` as well as ``null``, which is why ``visibility.sequence.driftActive`` and
``visibility.invocationAudit.replayed`` only ever show ``true`` (quirk Q-7, kept).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ops_manager.model._json import alt, strip_nulls
from ops_manager.model._time import format_ts

JSON = dict[str, Any]


class StatusInputs(NamedTuple):
    """Everything status reads, already parsed (``None`` = file or line absent).

    A named tuple, not an ``attrs`` class, so ``status`` imports no ``attrs``.
    """

    now: int
    repo_path: str
    loop_id: str
    summary_window: int
    files: dict[str, str]
    state: JSON | None = None
    cursor: JSON | None = None
    health_file: JSON | None = None
    heartbeat_state: JSON | None = None
    sequence_state: JSON | None = None
    drift_state: JSON | None = None
    dispatch_state: JSON | None = None
    last_intent: JSON | None = None
    last_reconcile: JSON | None = None
    last_control: JSON | None = None
    last_heartbeat: JSON | None = None
    last_sequence: JSON | None = None
    last_invocation: JSON | None = None
    last_alert: JSON | None = None
    #: the telemetry summary, when one could be computed
    summary: JSON | None = None


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _first_bool(*values: Any) -> bool | None:
    """The first value that is a real boolean (``false`` counts), else ``None``."""
    for value in values:
        if isinstance(value, bool):
            return value
    return None


def build_status(inp: StatusInputs) -> JSON:
    """The status object, top-level nulls stripped, in the contract's key order."""
    state = inp.state or {}
    health = state.get("health") if state.get("health") is not None else (inp.health_file or {})
    trace = _trace(inp)
    visibility = strip_nulls(
        {
            "heartbeat": _heartbeat(inp),
            "sequence": _sequence(inp),
            "invocationAudit": _invocation(inp),
            "trace": trace,
        }
    )
    drift = inp.drift_state if inp.drift_state is not None else state.get("drift")
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "generatedAt": format_ts(inp.now),
            "source": {"repoPath": inp.repo_path, "loopId": inp.loop_id},
            "lifecycle": {
                "state": alt(
                    _get(state, "transition", "currentState"),
                    _get(state, "projection", "status"),
                    "unknown",
                ),
                "confidence": alt(_get(state, "transition", "confidence")),
                "runId": alt(_get(state, "run", "runId")),
                "iteration": alt(_get(state, "run", "iteration")),
                **_posture(health),
            },
            "health": health,
            "cursor": {
                "eventLineOffset": alt(
                    _get(inp.cursor, "eventLineOffset"), _get(state, "cursor", "eventLineOffset"), 0
                ),
                "eventLineCount": alt(
                    _get(inp.cursor, "eventLineCount"), _get(state, "cursor", "eventLineCount"), 0
                ),
            },
            "control": {
                "lastIntent": alt(_get(inp.last_intent, "intent")),
                "lastStatus": alt(_get(inp.last_intent, "status")),
                "lastRequestedBy": alt(_get(inp.last_intent, "requestedBy")),
                "lastTimestamp": alt(_get(inp.last_intent, "timestamp")),
                "lastTraceId": alt(
                    _get(inp.last_intent, "traceId"), _get(inp.last_control, "traceId")
                ),
            },
            "reconcile": {
                "lastStatus": alt(_get(inp.last_reconcile, "status")),
                "lastTimestamp": alt(_get(inp.last_reconcile, "timestamp")),
                "lastTransport": alt(_get(inp.last_reconcile, "transport")),
                "lastFailureCode": alt(_get(inp.last_reconcile, "failureCode")),
                "lastDurationSeconds": alt(_get(inp.last_reconcile, "durationSeconds")),
                "lastTraceId": alt(_get(inp.last_reconcile, "traceId")),
            },
            "visibility": visibility,
            "tuning": _tuning(inp, state),
            "drift": drift,
            "alerts": _alerts(inp),
            "traceLinkage": _trace_linkage(inp, trace),
            "files": inp.files,
        }
    )


def _posture(health: Any) -> JSON:
    """The run posture keys of ``lifecycle`` (ours; none for a plain live run).

    From ``health.posture`` (reducers/posture.py): ``posture`` plus ``finished`` (reason and
    time of the terminal event), ``awaitingApprovalSince`` (the approval request's time), or
    ``presumedDead`` (the evidence that a run still marked active died silently).
    """
    posture = _get(health, "posture")
    kind = _get(posture, "kind")
    if not isinstance(kind, str):
        return {}
    out: JSON = {"posture": kind}
    if kind == "finished":
        out["finished"] = strip_nulls(
            {"reason": _get(posture, "reason"), "at": _get(posture, "since")}
        )
    elif kind == "awaiting_approval":
        out["awaitingApprovalSince"] = _get(posture, "since")
    elif kind == "presumed_dead":
        out["presumedDead"] = _get(posture, "presumedDead")
    return out


def _heartbeat(inp: StatusInputs) -> JSON | None:
    hb, row = inp.heartbeat_state, inp.last_heartbeat
    if hb is None and row is None:
        return None
    return strip_nulls(
        {
            "freshnessStatus": alt(_get(hb, "freshnessStatus")),
            "reasonCode": alt(_get(hb, "reasonCode"), _get(row, "reasonCode")),
            "lastHeartbeatAt": alt(_get(hb, "lastHeartbeatAt"), _get(row, "heartbeatAt")),
            "heartbeatLagSeconds": alt(
                _get(hb, "heartbeatLagSeconds"), _get(row, "heartbeatLagSeconds")
            ),
            "updatedAt": alt(_get(hb, "updatedAt"), _get(row, "timestamp")),
            "transport": alt(_get(hb, "transport"), _get(row, "transport")),
            "traceId": alt(_get(hb, "traceId"), _get(row, "traceId")),
        }
    )


def _sequence(inp: StatusInputs) -> JSON | None:
    seq, row = inp.sequence_state, inp.last_sequence
    if seq is None and row is None:
        return None
    violations = _get(seq, "violations")
    if violations is None:
        violations = _get(row, "violations")
    return strip_nulls(
        {
            "status": alt(_get(seq, "status"), _get(row, "status")),
            "reasonCode": alt(_get(seq, "reasonCode"), _get(row, "reasonCode")),
            "driftActive": _first_bool(_get(seq, "driftActive"), _get(row, "driftActive")),
            "violations": violations,
            "snapshotCurrent": alt(
                _get(seq, "snapshot", "current"), _get(row, "snapshot", "current")
            ),
            "eventsLast": alt(_get(seq, "events", "last"), _get(row, "events", "last")),
            "updatedAt": alt(_get(seq, "updatedAt"), _get(row, "timestamp")),
            "transport": alt(_get(seq, "transport"), _get(row, "transport")),
            "traceId": alt(_get(seq, "traceId"), _get(row, "traceId")),
        }
    )


def _invocation(inp: StatusInputs) -> JSON | None:
    row = inp.last_invocation
    if row is None:
        return None
    return strip_nulls(
        {
            "timestamp": alt(row.get("timestamp")),
            "intent": alt(row.get("intent")),
            "transport": alt(row.get("transport")),
            "idempotencyKey": alt(row.get("idempotencyKey")),
            "executionStatus": alt(_get(row, "execution", "status")),
            "confirmationStatus": alt(_get(row, "confirmation", "status")),
            "outcomeStatus": alt(_get(row, "outcome", "status")),
            "replayed": _first_bool(_get(row, "execution", "replayed")),
            "traceId": alt(row.get("traceId")),
        }
    )


def _trace_ids(inp: StatusInputs) -> JSON:
    return {
        "controlTraceId": alt(_get(inp.last_intent, "traceId"), _get(inp.last_control, "traceId")),
        "controlInvocationTraceId": alt(_get(inp.last_invocation, "traceId")),
        "reconcileTraceId": alt(_get(inp.last_reconcile, "traceId")),
        "heartbeatTraceId": alt(
            _get(inp.heartbeat_state, "traceId"), _get(inp.last_heartbeat, "traceId")
        ),
        "sequenceTraceId": alt(
            _get(inp.sequence_state, "traceId"), _get(inp.last_sequence, "traceId")
        ),
        "alertTraceId": alt(_get(inp.last_alert, "traceId"), _get(inp.dispatch_state, "traceId")),
    }


def _trace(inp: StatusInputs) -> JSON:
    ids = _trace_ids(inp)
    pool = {
        ids[k]
        for k in (
            "controlTraceId",
            "reconcileTraceId",
            "alertTraceId",
            "heartbeatTraceId",
            "sequenceTraceId",
        )
        if ids[k] is not None
    }
    ids["sharedTraceId"] = next(iter(pool)) if len(pool) == 1 else None
    return strip_nulls(ids)


def _trace_linkage(inp: StatusInputs, trace: JSON) -> JSON:
    ids = _trace_ids(inp)
    reconcile, alert, control = ids["reconcileTraceId"], ids["alertTraceId"], ids["controlTraceId"]
    shared = (
        reconcile
        if reconcile is not None
        and reconcile == alert
        and (control is None or control == reconcile)
        else None
    )
    return {**ids, "sharedTraceId": shared}


def _tuning(inp: StatusInputs, state: JSON) -> JSON:
    summary = inp.summary
    return {
        "summaryWindow": inp.summary_window,
        "appliedProfile": alt(
            _get(state, "health", "thresholds", "profile"),
            _get(inp.health_file, "thresholds", "profile"),
        ),
        "recommendedProfile": alt(_get(summary, "recommendedProfile")),
        "confidence": alt(_get(summary, "confidence")),
        "rationale": alt(_get(summary, "rationale")),
        "telemetrySummary": None
        if summary is None
        else {
            "observed": alt(summary.get("observed"), {}),
            "source": alt(summary.get("source"), {}),
        },
    }


def _alerts(inp: StatusInputs) -> JSON | None:
    dispatch = None
    if inp.dispatch_state is not None:
        d = inp.dispatch_state
        dispatch = strip_nulls(
            {
                "status": alt(d.get("status")),
                "updatedAt": alt(d.get("updatedAt")),
                "processedCount": alt(d.get("processedCount"), 0),
                "dispatchedCount": alt(d.get("dispatchedCount"), 0),
                "skippedCount": alt(d.get("skippedCount"), 0),
                "failedCount": alt(d.get("failedCount"), 0),
                "failureReasonCodes": alt(d.get("failureReasonCodes"), []),
                "escalationsLineOffset": alt(d.get("escalationsLineOffset"), 0),
                "escalationsLineCount": alt(d.get("escalationsLineCount"), 0),
                "lastTraceId": alt(d.get("traceId")),
                # the sink config is unusable: pages wait (alert_config_invalid); absent
                # once a run loads the config again
                "configError": d.get("configError")
                if isinstance(d.get("configError"), dict)
                else None,
            }
        )
    last = None
    if inp.last_alert is not None:
        a = inp.last_alert
        last = strip_nulls(
            {
                key: alt(a.get(key))
                for key in (
                    "timestamp",
                    "status",
                    "reasonCode",
                    "escalationCategory",
                    "eventSeverity",
                    "sinkCount",
                    "dispatchedSinkCount",
                    "failedSinkCount",
                    "traceId",
                    "escalationTraceId",
                )
            }
        )
    if dispatch is None and last is None:
        return None
    return strip_nulls({"dispatch": dispatch, "lastDelivery": last})
