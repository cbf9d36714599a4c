"""The health projection (``loop.md`` §3.4): a pure function of the per-loop artifacts.

Every decision is a rule with a named reason code; the rules run in contract order, the
list is de-duplicated by ``code:severity`` (first added wins, Q-32) and sorted by that key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ops_manager.model._json import alt, as_nonneg_int, nonempty_str
from ops_manager.model._time import format_ts, parse_ts
from ops_manager.reducers.posture import Posture, posture_json, presumed_dead, run_posture
from ops_manager.reducers.thresholds import Thresholds

#: ``--failure-code`` -> health reason code for the ingest-failure rule (§3.4 rule 7).
#: A code not listed here is passed through as its own reason code; an empty code is
#: ``reconcile_failed`` (see :func:`reason_for_failure`).
HEALTH_REASON_FOR_FAILURE: dict[str, str] = {
    "snapshot_unavailable": "transport_unreachable",
    "events_unavailable": "transport_unreachable",
    "service_request_failed": "transport_unreachable",
    "service_response_invalid": "invalid_transport_payload",
    "projection_failed": "projection_failed",
}

#: reason code when ingest failed without a failure code (direct ``health`` use)
NO_FAILURE_CODE_REASON = "reconcile_failed"

#: last control status -> health reason code (§3.4 rule 2)
CONTROL_REASON_FOR_STATUS: dict[str, str] = {
    "ambiguous": "control_ambiguous",
    "failed_command": "control_failed_command",
}

#: severity -> health status; the worst severity present wins, in this order
_STATUS_BY_SEVERITY: tuple[tuple[str, str], ...] = (
    ("critical", "critical"),
    ("degraded", "degraded"),
)


def reason_for_failure(failure_code: str | None) -> str:
    """The health reason code for an ingest failure with ``failure_code``."""
    if not failure_code:
        return NO_FAILURE_CODE_REASON
    return HEALTH_REASON_FOR_FAILURE.get(failure_code, failure_code)


@attrs.frozen
class HealthInputs:
    """Everything the health projection looks at, already read from disk.

    ``state``/``heartbeat_state``/``sequence_state``/``transport_health`` are the parsed
    artifact objects (``{}`` when absent); ``last_control_status`` is the ``status`` of the
    last intents row, if any.
    """

    now: int
    trace_id: str | None
    transport: str
    ingest_status: str
    failure_code: str | None
    thresholds: Thresholds
    state: dict[str, Any]
    heartbeat_state: dict[str, Any]
    sequence_state: dict[str, Any]
    transport_health: dict[str, Any]
    last_control_status: str | None
    #: why the alert sink config cannot be used (pages wait undelivered), else ``None``
    alert_config_error: str | None = None


@attrs.frozen
class HealthSignals:
    """The metrics the rules compare, extracted from :class:`HealthInputs`."""

    divergence_any: bool
    last_event_at: str | None
    lifecycle_state: str
    ingest_lag: int | None
    last_heartbeat_at: str | None
    heartbeat_lag: int | None
    failure_streak: int
    last_failure_code: str | None
    sequence_status: str | None
    sequence_reason_code: str | None
    sequence_updated_at: str | None
    sequence_drift_active: bool
    last_control_status: str | None
    #: whether the runtime still owes events (a finished run or an approval wait does not)
    posture: Posture


def _get(obj: object, *keys: str) -> Any:
    """``obj.k1.k2...`` with jq's null-propagation (never raises on odd shapes)."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _first_str(*values: Any) -> str | None:
    """jq ``a // b`` restricted to values usable as strings (non-empty)."""
    for value in values:
        text = nonempty_str(value)
        if text is not None:
            return text
    return None


def _lag(now: int, at: str | None) -> int | None:
    parsed = parse_ts(at)
    return None if parsed is None else max(0, now - parsed)


def extract_signals(inp: HealthInputs) -> HealthSignals:
    """Pull the compared metrics out of the artifacts (jq ``//`` semantics; odd shapes are
    tolerated, never raised on)."""
    state, hb, seq, th = inp.state, inp.heartbeat_state, inp.sequence_state, inp.transport_health
    last_event_at = nonempty_str(_get(state, "projection", "lastEventAt"))
    last_heartbeat_at = _first_str(_get(hb, "lastHeartbeatAt"), _get(hb, "heartbeat", "timestamp"))
    # recompute from lastHeartbeatAt on every pass so a silent runtime goes stale
    # even while reconciles fail; the stored lag is only a fallback when the time is unusable.
    heartbeat_lag = _lag(inp.now, last_heartbeat_at)
    if heartbeat_lag is None:
        heartbeat_lag = as_nonneg_int(_get(hb, "heartbeatLagSeconds"))
    drift_active = alt(_get(seq, "driftActive"), False) is True
    sequence_status = nonempty_str(_get(seq, "status"))
    if sequence_status is None and drift_active:
        sequence_status = "ordering_drift_detected"
    return HealthSignals(
        divergence_any=alt(_get(state, "divergence", "any"), False) is True,
        last_event_at=last_event_at,
        lifecycle_state=_first_str(
            _get(state, "transition", "currentState"), _get(state, "projection", "status")
        )
        or "unknown",
        ingest_lag=_lag(inp.now, last_event_at),
        last_heartbeat_at=last_heartbeat_at,
        heartbeat_lag=heartbeat_lag,
        failure_streak=as_nonneg_int(_get(th, "failureStreak")) or 0,
        last_failure_code=nonempty_str(_get(th, "lastFailureCode")),
        sequence_status=sequence_status,
        sequence_reason_code=nonempty_str(_get(seq, "reasonCode")),
        sequence_updated_at=nonempty_str(_get(seq, "updatedAt")),
        sequence_drift_active=drift_active,
        last_control_status=nonempty_str(inp.last_control_status),
        posture=run_posture(state),
    )


def _reason(code: str, severity: str, metric: str, observed: str, threshold: str) -> dict[str, str]:
    """One reason object; empty fields are dropped (**[strip]**)."""
    fields = {
        "code": code,
        "severity": severity,
        "metric": metric,
        "observed": observed,
        "threshold": threshold,
    }
    return {k: v for k, v in fields.items() if v != ""}


def _graded(
    code: str, metric: str, value: int | None, degraded: int, critical: int
) -> dict[str, str] | None:
    """A two-level threshold rule (``>=``, so a threshold of 0 always fires; Q-14)."""
    if value is None:
        return None
    if value >= critical:
        return _reason(code, "critical", metric, str(value), str(critical))
    if value >= degraded:
        return _reason(code, "degraded", metric, str(value), str(degraded))
    return None


def _rule_divergence(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    if not s.divergence_any:
        return None
    return _reason("divergence_detected", "degraded", "divergence.any", "true", "false")


def _rule_control(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    status = s.last_control_status
    code = CONTROL_REASON_FOR_STATUS.get(status) if status else None
    if code is None or status is None:
        return None
    return _reason(code, "degraded", "control.status", status, "confirmed")


def _rule_ingest_lag(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    if not s.posture.expects_events:
        # a finished run / an approval wait writes nothing: silence is not staleness (ours)
        return None
    t = inp.thresholds
    return _graded(
        "ingest_stale",
        "ingestLagSeconds",
        s.ingest_lag,
        t.degraded_ingest_lag_seconds,
        t.critical_ingest_lag_seconds,
    )


def _rule_heartbeat_lag(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    if not s.posture.expects_events:
        return None
    t = inp.thresholds
    return _graded(
        "runtime_heartbeat_stale",
        "heartbeatLagSeconds",
        s.heartbeat_lag,
        t.degraded_heartbeat_lag_seconds,
        t.critical_heartbeat_lag_seconds,
    )


def _rule_transport_streak(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    t = inp.thresholds
    return _graded(
        "transport_unreachable",
        "transportFailureStreak",
        s.failure_streak,
        t.degraded_transport_failure_streak,
        t.critical_transport_failure_streak,
    )


def _rule_sequence(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    if not s.sequence_drift_active:
        return None
    code = s.sequence_reason_code or "ordering_drift_detected"
    observed = s.sequence_status or "ordering_drift_detected"
    return _reason(code, "degraded", "sequence.status", observed, "ok")


def _rule_ingest_failed(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    if inp.ingest_status != "failed":
        return None
    code = reason_for_failure(inp.failure_code)
    return _reason(code, "degraded", "ingestStatus", "failed", "success")


def _rule_alert_config(inp: HealthInputs, s: HealthSignals) -> dict[str, str] | None:
    # not a runtime problem, but while it lasts nobody is paged: health is where an operator
    # (and fleet-status) looks, so the loop says so (docs/alert-sinks.md)
    if not inp.alert_config_error:
        return None
    return _reason("alert_config_invalid", "degraded", "alertConfig", "invalid", "valid")


#: the reason rules, in the contract's evaluation order (order matters for dedup, Q-32)
HEALTH_RULES: tuple[Callable[[HealthInputs, HealthSignals], dict[str, str] | None], ...] = (
    _rule_divergence,
    _rule_control,
    _rule_ingest_lag,
    _rule_heartbeat_lag,
    _rule_transport_streak,
    _rule_sequence,
    _rule_ingest_failed,
    _rule_alert_config,
)


def _dedup_key(reason: dict[str, str]) -> str:
    return f"{reason.get('code', '')}:{reason.get('severity', '')}"


def collect_reasons(
    inp: HealthInputs, signals: HealthSignals | None = None
) -> list[dict[str, str]]:
    """Run the rules; de-duplicate by ``code:severity`` keeping the first, sort by that key."""
    s = extract_signals(inp) if signals is None else signals
    unique: dict[str, dict[str, str]] = {}
    for rule in HEALTH_RULES:
        reason = rule(inp, s)
        if reason is not None:
            unique.setdefault(_dedup_key(reason), reason)
    return [unique[key] for key in sorted(unique)]


def health_status(reasons: list[dict[str, str]]) -> str:
    """``critical`` if any reason is critical, else ``degraded`` if any is degraded, else
    ``healthy``."""
    severities = {r.get("severity") for r in reasons}
    for severity, status in _STATUS_BY_SEVERITY:
        if severity in severities:
            return status
    return "healthy"


def compute_health(inp: HealthInputs) -> dict[str, Any]:
    """The health object (§3.4 key order), as written to ``OPS/health.json``."""
    s = extract_signals(inp)
    reasons = collect_reasons(inp, s)
    health: dict[str, Any] = {
        "schemaVersion": "v1",
        "updatedAt": format_ts(inp.now),
        "traceId": nonempty_str(inp.trace_id),
        "status": health_status(reasons),
        "reasonCodes": sorted({r["code"] for r in reasons}),
        "reasons": reasons,
        "metrics": {
            "ingestLagSeconds": s.ingest_lag,
            "heartbeatLagSeconds": s.heartbeat_lag,
            "transportFailureStreak": s.failure_streak,
            "lastControlStatus": s.last_control_status,
            "sequenceStatus": s.sequence_status,
            "lifecycleState": s.lifecycle_state,
        },
        "thresholds": inp.thresholds.to_json(),
        "transport": {
            "mode": inp.transport,
            "ingestStatus": inp.ingest_status,
            "failureCode": nonempty_str(inp.failure_code),
            "lastFailureCode": s.last_failure_code,
        },
        "evidence": {
            "lastEventAt": s.last_event_at,
            "lastHeartbeatAt": s.last_heartbeat_at,
            "sequenceUpdatedAt": s.sequence_updated_at,
        },
    }
    # ours (docs/compatibility.md): finished / awaiting_approval / presumed_dead; absent for
    # a plain live run
    posture = posture_json(
        s.posture,
        presumed_dead(
            inp.state, s.posture, s.ingest_lag, inp.thresholds.degraded_ingest_lag_seconds
        ),
    )
    if posture is not None:
        health["posture"] = posture
    return health
